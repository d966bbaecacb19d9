"""What the Overview and Rules pages show, computed from the metric history.

The figures are the engine's own metrics (docs/operations.md), so the console, Prometheus and
the alerts in deploy/prometheus/kairos-alerts.yml agree; the health flags use the same rules as
those alerts: a rule *stopped firing* when its candidates over the last 15 minutes fall below a
tenth of its own rate over the hours before; it is *erroring* when it raised in the last 15
minutes; it is *suppressed mostly* when policy keeps more than 80% of its candidates of the last
hour from going out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.console.history import EMPTY, Delta, History
from engine.ops.uplift import Arm, RuleUplift
from engine.sdk.rule import Rule
from engine.sdk.ruleset import RuleSet

__all__ = ["Overview", "RuleRow", "duration_text", "overview", "per_hour_text", "rule_rows"]

NOW_WINDOW = 30.0  # "per second" figures: the last half minute
MIN_RATE_SPAN = 60.0  # no per-hour figure extrapolated from less than a minute
HOUR = 3600.0
RECENT = 900.0  # health: the last 15 minutes ...
BASELINE = 6 * HOUR  # ... against the hours before
MIN_BASELINE_SPAN = 1800.0  # at least half an hour of baseline to compare with
MIN_BASELINE_RATE = 10 / HOUR  # and a rule that fired more than ten times an hour then
STOPPED_SHARE = 0.1
SUPPRESSED_SHARE = 0.8
MIN_CANDIDATES = 20
NOT_LOST = frozenset({"held_out", "quiet_hours_deferred"})  # measured or delayed, not refused

LIVE = ("kairos_candidates_total", "kairos_actions_total", "kairos_suppressions_total")
SHADOW = ("kairos_shadow_candidates_total", "kairos_shadow_actions_total",
          "kairos_shadow_suppressions_total")


@dataclass(frozen=True, slots=True)
class Overview:
    window: float
    events: dict[str, tuple[float, float]]  # per source topic: (per second, total)
    decisions: tuple[float, float]
    actions: dict[str, tuple[float, float]]  # per channel
    shadow_actions: dict[str, tuple[float, float]]
    suppressions: dict[str, tuple[float, float]]  # per reason
    dead_letters: dict[str, tuple[float, float]]
    decision_p99: float | None  # seconds, over the window (or since start)
    lag: dict[str, float]  # per topic (Kafka)
    workers: dict[str, bool]  # metrics endpoint -> answered (Kafka)


def _per(delta: Delta, name: str, label: str) -> dict[str, tuple[float, float]]:
    grown = delta.by(name, label)
    totals = delta.now.by(name, label)
    span = delta.span
    return {k: (grown.get(k, 0.0) / span if span > 0 else 0.0, v)
            for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def overview(history: History) -> Overview:
    d = history.delta(NOW_WINDOW)
    latest = d.now
    p99 = d.quantile(0.99, "kairos_decision_latency_seconds") if d.span > 0 else None
    if p99 is None:  # nothing decided in the window: since start, rather than nothing
        p99 = Delta(EMPTY, latest).quantile(
            0.99, "kairos_decision_latency_seconds")
    return Overview(
        window=d.span,
        events=_per(d, "kairos_events_consumed_total", "topic"),
        decisions=(d.rate("kairos_decision_latency_seconds_count"),
                   latest.total("kairos_decision_latency_seconds_count")),
        actions=_per(d, "kairos_actions_total", "channel"),
        shadow_actions=_per(d, "kairos_shadow_actions_total", "channel"),
        suppressions=_per(d, "kairos_suppressions_total", "reason"),
        dead_letters=_per(d, "kairos_dead_letters_total", "reason"),
        decision_p99=p99,
        lag=latest.by("kairos_consumer_lag", "topic"),
        workers={url: v > 0 for url, v in latest.by("kairos_console_scrape_up", "url").items()},
    )


@dataclass(frozen=True, slots=True)
class RuleRow:
    rule: Rule
    mode: str  # live or shadow
    enabled: bool
    window: float  # seconds the per-hour figures are over
    fires_per_hour: float
    actions_per_hour: float
    fires: float  # since the engine started
    actions: float
    channels: dict[str, float]  # actions per hour per channel
    suppressions: dict[str, float]  # per reason, in the window
    errors: float
    errors_recent: float
    p99: float | None  # seconds one run of the rule takes
    last_fired: float | None  # decision time of its latest candidate
    uplift: RuleUplift | None  # treated vs control, where the rule has a control group
    health: list[str] = field(default_factory=list)  # stopped firing, erroring, suppressed mostly

    @property
    def triggers(self) -> str:
        return ", ".join(map(str, self.rule.triggers))


def rule_rows(history: History, rules: RuleSet) -> list[RuleRow]:
    hour = history.delta(HOUR)
    recent = history.delta(RECENT)
    rows = []
    for r in rules.rules.values():
        mode = getattr(r, "mode", "live")
        rows.append(_row(r, mode, r.id not in rules.disabled, history, hour, recent))
    return sorted(rows, key=lambda row: (row.mode != "live", row.rule.id))


def _row(r: Rule, mode: str, enabled: bool, history: History, hour: Delta,
         recent: Delta) -> RuleRow:
    fires_name, actions_name, suppressed_name = SHADOW if mode == "shadow" else LIVE
    scale = HOUR / hour.span if hour.span >= MIN_RATE_SPAN else math.nan
    fires = hour.count(fires_name, rule=r.id)
    suppressed = {k: v for k, v in hour.by(suppressed_name, "reason", rule=r.id).items() if v}
    errors_recent = recent.count("kairos_rule_errors_total", rule=r.id) if recent.span > 0 \
        else hour.now.total("kairos_rule_errors_total", rule=r.id)
    p99 = hour.quantile(0.99, "kairos_rule_seconds", rule=r.id) if hour.span > 0 else None
    if p99 is None:
        p99 = Delta(EMPTY, hour.now).quantile(
            0.99, "kairos_rule_seconds", rule=r.id)
    last = hour.now.total("kairos_rule_last_fired_timestamp_seconds", rule=r.id)
    row = RuleRow(
        rule=r, mode=mode, enabled=enabled, window=hour.span,
        fires_per_hour=fires * scale,
        actions_per_hour=hour.count(actions_name, rule=r.id) * scale,
        fires=hour.now.total(fires_name, rule=r.id),
        actions=hour.now.total(actions_name, rule=r.id),
        channels={k: v * scale for k, v in hour.by(actions_name, "channel", rule=r.id).items()},
        suppressions=dict(sorted(suppressed.items(), key=lambda kv: -kv[1])),
        errors=hour.now.total("kairos_rule_errors_total", rule=r.id),
        errors_recent=errors_recent, p99=p99, last_fired=last or None,
        uplift=_uplift(r.id, hour),
    )
    row.health.extend(_health(row, history, fires_name, fires))
    return row


def _health(row: RuleRow, history: History, fires_name: str, fires_hour: float) -> list[str]:
    flags = []
    if row.enabled and _stopped(history, fires_name, row.rule.id):
        flags.append("stopped firing")
    if row.errors_recent > 0:
        flags.append("erroring")
    lost = sum(v for k, v in row.suppressions.items() if k not in NOT_LOST)
    if fires_hour >= MIN_CANDIDATES and lost > SUPPRESSED_SHARE * fires_hour:
        flags.append("suppressed mostly")
    return flags


def _stopped(history: History, fires_name: str, rule_id: str) -> bool:
    recent = history.delta(RECENT)
    if recent.span < RECENT * 0.9:
        return False  # not watched long enough to say
    baseline = history.delta(BASELINE, until=recent.then.at)
    if baseline.span < MIN_BASELINE_SPAN:
        return False
    before = baseline.rate(fires_name, rule=rule_id)
    return before > MIN_BASELINE_RATE and recent.rate(fires_name, rule=rule_id) < \
        STOPPED_SHARE * before


def _uplift(rule_id: str, hour: Delta) -> RuleUplift | None:
    now = hour.now
    arms = {}
    for arm in ("treated", "control"):
        arms[arm] = Arm(
            contacts=int(now.total("kairos_rule_exposures_total", rule=rule_id, arm=arm)),
            converted=int(now.total("kairos_rule_conversions_total", rule=rule_id, arm=arm)))
    if not arms["control"].contacts:
        return None
    return RuleUplift(rule_id, arms["treated"], arms["control"])


def per_hour_text(value: float) -> str:
    """12.3k/h, 45/h, 0.4/h: a rate at a glance ("-" before a minute was watched)."""
    if math.isnan(value):
        return "-"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.1f}"


def duration_text(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"
