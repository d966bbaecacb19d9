"""The pure arithmetic of the kit: latency histograms, lag trends, the ramp's stop rule.

No I/O and no clocks here, so each rule the results depend on has a plain unit test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from hdrh.histogram import HdrHistogram

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class Latency:
    """An HDR histogram of latencies, recorded in microseconds (1 us .. 10 min, 3 digits)."""

    def __init__(self) -> None:
        self.hist = HdrHistogram(1, 600_000_000, 3)

    def record(self, seconds: float) -> None:
        self.hist.record_value(min(600_000_000, max(1, round(seconds * 1e6))))

    @property
    def count(self) -> int:
        return int(self.hist.get_total_count())

    def add(self, other: Latency) -> None:
        self.hist.add(other.hist)

    def reset(self) -> None:
        self.hist.reset()

    def percentiles_ms(self) -> dict[str, float | None]:
        """`p50`, `p90`, `p99`, `p99.9` and `max` in milliseconds; None without samples."""
        if self.count == 0:
            return {**{_name(p): None for p in PERCENTILES}, "max": None}
        out: dict[str, float | None] = {
            _name(p): round(self.hist.get_value_at_percentile(p) / 1000, 2) for p in PERCENTILES
        }
        out["max"] = round(self.hist.get_max_value() / 1000, 2)
        return out


def _name(p: float) -> str:
    return f"p{p:g}"


def slope(values: Sequence[float]) -> float:
    """Least-squares slope per sample; samples are one second apart, so units per second."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def lag_growing(
    lags: Sequence[int], rate: float, allowance_s: float = 1.0, slope_share: float = 0.05
) -> bool:
    """Whether consumer lag grew over a run at `rate` events/s, sampled once a second.

    Committed offsets move in steps (a worker commits every second or so, on each of its
    topics), so single samples jump by a second of arrivals or more: the ends of the run are
    compared by their medians of three. Lag grows when it rose by more than `allowance_s`
    seconds of arrivals and the whole run's trend climbs faster than `slope_share` of the rate.
    """
    if len(lags) < 3:
        return False
    rise = median(lags[-3:]) - median(lags[:3])
    return rise > rate * allowance_s and slope(lags) > slope_share * rate


@dataclass(frozen=True, slots=True)
class Step:
    """One ramp step as measured: its rate, p99 in ms, whether lag grew, answers missing."""

    rate: float
    p99_ms: float | None
    lag_grew: bool
    unanswered_share: float = 0.0


def step_ok(step: Step, target_p99_ms: float, max_unanswered: float = 0.01) -> bool:
    """A step is sustained when its p99 is within target, lag did not grow and (almost) every
    event was answered before the step's drain ended."""
    return (
        step.p99_ms is not None
        and step.p99_ms <= target_p99_ms
        and not step.lag_grew
        and step.unanswered_share <= max_unanswered
    )


def max_sustainable(steps: Sequence[Step], target_p99_ms: float) -> float | None:
    """The highest rate before the first step that failed (steps in increasing rate order)."""
    best = None
    for step in steps:
        if not step_ok(step, target_p99_ms):
            break
        best = step.rate
    return best


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or not base:
        return None
    return round(value / base, 3)
