"""Prometheus metrics, the same names in both runtimes (Prometheus naming conventions).

The hot path only bumps plain dict counters and bucket arrays; a custom collector turns them
into Prometheus families when scraped. prometheus-client's own `labels().inc()` and
`Histogram.observe()` take a lock and cost more than deciding a simple event does.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from engine.obs import logs

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
ACTION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STATE_BUCKETS = (256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0)
# One run of one rule: a dict lookup takes a microsecond, a slow rule tens of milliseconds.
RULE_BUCKETS = (0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025,
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05)


class Histogram:
    """Fixed buckets, no lock: observations come from one thread (the event loop)."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        """(upper bound, observations at or below it), as Prometheus buckets count."""
        out, running = [], 0
        for bound, n in zip((*map(str, self.buckets), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, float(running)))
        return out

    def family(self, name: str, doc: str) -> HistogramMetricFamily:
        return HistogramMetricFamily(name, doc, buckets=self.cumulative(), sum_value=self.sum)


def labelled_histograms(name: str, doc: str, label: str,
                        histograms: Mapping[str, Histogram]) -> HistogramMetricFamily:
    """A histogram family with one series per label value (one `Histogram` each)."""
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value, h in histograms.items():
        family.add_metric([value], h.cumulative(), h.sum)
    return family


def labelled(name: str, doc: str, labels: list[str],
             counts: Mapping[Any, int]) -> CounterMetricFamily:
    """A counter family from a Counter keyed by one label value or a tuple of them."""
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, n in counts.items():
        family.add_metric(list(key) if isinstance(key, tuple) else [key], n)
    return family


class Metrics:
    """One set per engine, so several engines in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()  # per input topic
        self.actions: Counter[tuple[str, str]] = Counter()  # per (rule, channel)
        self.dead_letters: Counter[str] = Counter()  # per reason class
        self.rule_errors: Counter[str] = Counter()  # per rule that raised
        self.candidates: Counter[str] = Counter()  # per rule
        self.suppressions: Counter[tuple[str, str, str]] = Counter()  # (rule, channel, reason)
        self.merges_refused: Counter[str] = Counter()  # per identifier kind
        self.rule_seconds: dict[str, Histogram] = {}  # per rule: one run's time (RULE_BUCKETS)
        self.rule_last_fired: dict[str, float] = {}  # per rule: time of its latest candidate
        self.exposures: Counter[tuple[str, str]] = Counter()  # (rule, arm): actions decided
        self.conversions: Counter[tuple[str, str]] = Counter()  # (rule, arm): actions converted
        # Rules in shadow mode, never in the live counters above (docs/rules.md)
        self.shadow_candidates: Counter[str] = Counter()  # per rule
        self.shadow_actions: Counter[tuple[str, str]] = Counter()  # per (rule, channel)
        self.shadow_suppressions: Counter[tuple[str, str, str]] = Counter()  # as suppressions
        self.duplicates = 0
        self.decision_latency = Histogram(LATENCY_BUCKETS)
        self.record_to_action = Histogram(ACTION_BUCKETS)  # Kafka worker only
        self.state_bytes = Histogram(STATE_BUCKETS)
        self.timers_pending = 0
        self.broker_up = 1  # 0 while a Kafka worker waits for the broker to answer again
        self.worker_recoveries = 0  # times a Kafka worker started over after losing the broker
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        yield labelled("kairos_events_consumed", "Input events consumed, per source topic.",
                       ["topic"], self.events)
        yield labelled("kairos_actions", "Next best actions decided, per rule and channel.",
                       ["rule", "channel"], self.actions)
        yield labelled("kairos_dead_letters", "Inputs sent to the dead-letter sink, per reason.",
                       ["reason"], self.dead_letters)
        yield labelled("kairos_candidates", "Candidate actions proposed by rules, per rule.",
                       ["rule"], self.candidates)
        yield labelled(
            "kairos_suppressions",
            "Candidates not acted on now, per rule, channel and reason (no_consent, capped, "
            "cooling_down, quiet_hours_deferred, outranked, held_out, expired, ...).",
            ["rule", "channel", "reason"], self.suppressions)
        yield labelled("kairos_rule_errors",
                       "Rules that raised while deciding (skipped), per rule.", ["rule"],
                       self.rule_errors)
        yield labelled_histograms(
            "kairos_rule_seconds", "Time one run of one rule takes (its candidates included), "
            "per rule.", "rule", self.rule_seconds)
        last = GaugeMetricFamily(
            "kairos_rule_last_fired_timestamp_seconds",
            "Decision time (Unix seconds) of the rule's latest candidate, per rule.",
            labels=["rule"])
        for rule_id, at in self.rule_last_fired.items():
            last.add_metric([rule_id], at)
        yield last
        yield labelled(
            "kairos_rule_exposures", "Actions decided, per rule and arm (treated, or control: "
            "held out).", ["rule", "arm"], self.exposures)
        yield labelled(
            "kairos_rule_conversions", "Actions followed by the contact's purchase within the "
            "conversion window (each counted once), per rule and arm.", ["rule", "arm"],
            self.conversions)
        yield labelled("kairos_shadow_candidates",
                       "Candidate actions proposed by rules in shadow mode, per rule.", ["rule"],
                       self.shadow_candidates)
        yield labelled("kairos_shadow_actions",
                       "Actions rules in shadow mode would have decided (never delivered), per "
                       "rule and channel.", ["rule", "channel"], self.shadow_actions)
        yield labelled("kairos_shadow_suppressions",
                       "Candidates of rules in shadow mode the policy would not have acted on, "
                       "per rule, channel and reason.", ["rule", "channel", "reason"],
                       self.shadow_suppressions)
        yield labelled(
            "kairos_identity_merges_refused",
            "Merges and identifiers the identity rules refused (a login that would unite two "
            "userIds, an identifier beyond its limit), per identifier kind.", ["kind"],
            self.merges_refused)
        yield CounterMetricFamily(
            "kairos_duplicate_events", "Events already decided once, not decided again.",
            value=self.duplicates,
        )
        yield self.decision_latency.family(
            "kairos_decision_latency_seconds",
            "Time to decide one message for one contact (state read, core, state write).",
        )
        yield self.record_to_action.family(
            "kairos_record_to_action_seconds",
            "From a consumed record's timestamp to its action handed to the producer (Kafka "
            "worker): the latency the worker adds, told apart from the broker's and clients'.",
        )
        yield self.state_bytes.family(
            "kairos_contact_state_bytes", "Encoded size of a contact's state when written."
        )
        yield GaugeMetricFamily(
            "kairos_timers_pending", "Timers indexed by this process.", value=self.timers_pending
        )
        yield GaugeMetricFamily(
            "kairos_broker_up", "0 while the worker cannot reach the broker and decides nothing.",
            value=self.broker_up,
        )
        yield CounterMetricFamily(
            "kairos_worker_recoveries", "Times the worker dropped its uncommitted work after a "
            "broker fault and started over from the committed offsets.",
            value=self.worker_recoveries,
        )
        yield labelled("kairos_log_lines_suppressed", "Repeated log lines held back, per logger.",
                       ["logger"], logs.suppressed)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Expose `/metrics` over HTTP (a daemon thread, so it never blocks the loop)."""
        start_http_server(port, addr=addr, registry=self.registry)
