"""`kairos replay --chart`: what a backtest decided over time, and what the policy held back.

The top panel counts actions per channel in periods of event time (hours over a history of up
to three days, days over a longer one); every period between the first action and the last has
a point, zero when nothing was decided, so a line never joins across a quiet stretch. The
bottom panel counts the candidates the policy did not deliver when it decided them, by reason
(cooling down, capped, no consent, quiet hours deferred, held out…). Both panels can be cut
to one rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.ops.replay import ReplayReport

__all__ = ["Series", "chart", "series"]

HOUR, DAY = 3600.0, 86400.0


@dataclass(frozen=True)
class Series:
    """Actions per channel, one count per period from the first period to the last."""

    period: float  # seconds
    starts: list[float]  # each period's start, epoch seconds
    counts: dict[str, list[int]]  # channel -> one count per period


def series(report: ReplayReport, rule: str | None = None) -> Series:
    times = [(t, ch) for t, r, ch in report.timeline if rule is None or r == rule]
    if not times:
        return Series(HOUR, [], {})
    lo, hi = min(t for t, _ in times), max(t for t, _ in times)
    period = HOUR if hi - lo <= 3 * DAY else DAY
    first = lo - lo % period
    n = int((hi - first) // period) + 1
    counts: dict[str, list[int]] = {}
    for t, channel in times:
        counts.setdefault(channel, [0] * n)[int((t - first) // period)] += 1
    return Series(period, [first + i * period for i in range(n)], dict(sorted(counts.items())))


def chart(report: ReplayReport, path: Path, rule: str | None = None) -> None:
    """A PNG of both panels, for every rule or for `rule` only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    s, held = series(report, rule), report.held_by_reason(rule)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8),
                                      gridspec_kw={"height_ratios": [3, 2]})
    when = mdates.date2num([datetime.fromtimestamp(x, UTC) for x in s.starts])  # type: ignore[no-untyped-call]
    for channel, counts in s.counts.items():
        top.plot(when, counts, label=channel, drawstyle="steps-post")
    top.xaxis_date()
    top.tick_params(axis="x", labelrotation=30)
    top.set_ylim(bottom=0)
    unit = "hour" if s.period == HOUR else "day"
    scope = f"rule {rule}" if rule else "all rules"
    top.set_title(f"Actions per {unit} of event time, per channel ({scope})")
    top.set_ylabel("actions")
    if s.counts:
        top.legend(fontsize="small")
    reasons = sorted(held, key=lambda k: (-held[k], k))
    bottom.barh(reasons, [held[k] for k in reasons])
    bottom.invert_yaxis()
    bottom.set_xlim(left=0)
    bottom.set_title(f"Held back by the policy, per reason ({scope})")
    bottom.set_xlabel("candidates")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
