"""The pure arithmetic of the kit: latency histograms, lag trends, the ramp's stop rule, the
median and spread of repeated runs, stalls, CPU accounting.

No I/O and no clocks here, so each rule the results depend on has a plain unit test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

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


# --- repeats: median and spread ---------------------------------------------------------------

SPREAD_LIMIT = 0.15  # a figure whose runs differ by more than this share of their median is noisy


def spread(values: Sequence[float]) -> float | None:
    """(max - min) / median of a figure's runs: how far one run may be from another."""
    if not values:
        return None
    mid = median(values)
    return round((max(values) - min(values)) / mid, 3) if mid else None


def repeated(values: Sequence[float]) -> dict[str, object]:
    """One figure over its runs: the runs, their median, spread and whether it is noisy."""
    s = spread(values)
    return {"runs": list(values), "median": median(values) if values else None, "spread": s,
            "noisy": s is not None and s > SPREAD_LIMIT}


def combine(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of one scenario as one result: the median run's details, every figure
    (`throughput_eps` and each of `figures`) replaced by its median over the runs, and
    `repeats` giving each figure's runs, median, spread and noisy flag."""
    if not runs:
        raise ValueError("no runs to combine")
    names = ["throughput_eps", *runs[0].get("figures", {})]
    series = {n: [r["figures"][n] if n != "throughput_eps" else r["throughput_eps"]
                  for r in runs] for n in names}
    series = {n: v for n, v in series.items() if all(isinstance(x, int | float) for x in v)}
    eps = series.get("throughput_eps")
    by_eps = sorted(runs, key=lambda r: r["throughput_eps"]) if eps else list(runs)
    out = dict(by_eps[(len(by_eps) - 1) // 2])
    repeats = {n: repeated(v) for n, v in series.items()}
    if "throughput_eps" in repeats:
        out["throughput_eps"] = repeats["throughput_eps"]["median"]
    if "figures" in out:
        out["figures"] = {n: repeats[n]["median"] if n in repeats else v
                          for n, v in out["figures"].items()}
    out["repeats"] = repeats
    return out


def noisy_figures(result: dict[str, Any]) -> list[str]:
    """The figures of a combined result whose spread exceeds `SPREAD_LIMIT`."""
    return [n for n, r in (result.get("repeats") or {}).items() if r["noisy"]]


# --- stalls and CPU accounting ----------------------------------------------------------------


def stalled_seconds(counts: Sequence[int], bucket_s: float, share: float = 0.1,
                    min_gap_s: float = 0.75) -> float:
    """Seconds a consumer stood still mid-run: runs of at least `min_gap_s` of interior
    buckets, each below `share` of the median busy bucket (librdkafka's fetch backoff pauses for a
    whole second once its prefetch queue is full; a shorter gap is a batch straddling buckets
    or a busy machine). The first and last busy buckets are ramp-up and tail."""
    busy = [i for i, n in enumerate(counts) if n > 0]
    if len(busy) < 3:
        return 0.0
    floor = share * median(counts[i] for i in busy)
    stalled, gap = 0.0, 0
    for n in [*counts[busy[0] + 1:busy[-1]], floor]:  # the sentinel closes the last gap
        if n < floor:
            gap += 1
            continue
        if gap * bucket_s >= min_gap_s:
            stalled += gap * bucket_s
        gap = 0
    return round(stalled, 3)


def cpu_seconds(stat: str, ticks_per_second: int) -> float:
    """A process's CPU time (user + system, its waited-for children too) from /proc/<pid>/stat.

    The command name in parentheses may hold spaces, so fields are counted after its ')'."""
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / ticks_per_second


def cpu_per_1k(cpu_s: float, events: int) -> float | None:
    """CPU-seconds per 1,000 events."""
    return round(cpu_s / events * 1000, 4) if events > 0 else None


def workers_for(rate: float, cpu_per_1k_events: float, busy: float = 0.7) -> int:
    """Workers (a core each) a rate needs when each may be `busy` of its core, at the
    CPU-seconds per 1,000 events measured with several workers sharing the partitions."""
    return max(1, math.ceil(rate * cpu_per_1k_events / 1000 / busy))
