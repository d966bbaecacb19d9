"""The console's memory of the metrics: snapshots over time, so counters become rates.

The engine exports counters since its start; a page needs "per second now", "per hour" and "far
below its own recent rate". The console samples every `FINE` seconds and keeps those for a few
minutes, then one snapshot every `COARSE` seconds for `KEEP` hours, which bounds its memory
whatever the uptime. Restarted processes reset their counters; a delta never goes negative.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from engine.console.source import Labels, Sample

__all__ = ["EMPTY", "Delta", "History", "Snapshot", "quantile"]

FINE = 2.0
FINE_KEEP = 300.0
COARSE = 300.0
KEEP = 7 * 3600.0

Key = tuple[str, Labels]


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    values: dict[Key, float]

    @classmethod
    def of(cls, at: float, samples: Iterable[Sample]) -> Snapshot:
        return cls(at, {(s.name, s.labels): s.value for s in samples})

    def series(self, name: str, match: dict[str, str]) -> Iterable[tuple[Labels, float]]:
        for (n, labels), value in self.values.items():
            if n == name and all((k, v) in labels for k, v in match.items()):
                yield labels, value

    def total(self, name: str, **match: str) -> float:
        return sum(v for _, v in self.series(name, match))

    def by(self, name: str, label: str, **match: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, value in self.series(name, match):
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
        return out


EMPTY = Snapshot(0.0, {})


@dataclass(frozen=True, slots=True)
class Delta:
    """What changed between two snapshots: counts, rates, and histogram quantiles."""

    then: Snapshot
    now: Snapshot

    @property
    def span(self) -> float:
        return self.now.at - self.then.at

    def count(self, name: str, **match: str) -> float:
        return _grown(self.now.total(name, **match), self.then.total(name, **match))

    def rate(self, name: str, **match: str) -> float:
        return self.count(name, **match) / self.span if self.span > 0 else 0.0

    def by(self, name: str, label: str, **match: str) -> dict[str, float]:
        before = self.then.by(name, label, **match)
        now = self.now.by(name, label, **match)
        return {k: _grown(v, before.get(k, 0.0)) for k, v in now.items()}

    def quantile(self, q: float, histogram: str, **match: str) -> float | None:
        """The q-quantile of a histogram's observations in the span (as `histogram_quantile`)."""
        buckets = self.by(f"{histogram}_bucket", "le", **match)
        return quantile(q, buckets)


def _grown(now: float, then: float) -> float:
    return now - then if now >= then else now  # a counter that went back was restarted


def quantile(q: float, buckets: dict[str, float]) -> float | None:
    """Linear interpolation within cumulative `le` buckets; None without observations."""
    bounds = sorted(((float(le), n) for le, n in buckets.items()), key=lambda b: b[0])
    if not bounds or bounds[-1][1] <= 0:
        return None
    rank = q * bounds[-1][1]
    lower, below = 0.0, 0.0
    for upper, cumulative in bounds:
        if cumulative >= rank:
            if upper == float("inf"):
                return lower  # beyond the last finite bucket: its bound is all we know
            inside = cumulative - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, cumulative
    return lower


class History:
    """Snapshots, fine for the last minutes and coarse for hours."""

    def __init__(self) -> None:
        self._fine: deque[Snapshot] = deque(maxlen=int(FINE_KEEP / FINE) + 1)
        self._coarse: deque[Snapshot] = deque(maxlen=int(KEEP / COARSE) + 1)

    def add(self, snapshot: Snapshot) -> None:
        self._fine.append(snapshot)
        if not self._coarse or snapshot.at - self._coarse[-1].at >= COARSE:
            self._coarse.append(snapshot)

    def latest(self) -> Snapshot:
        return self._fine[-1] if self._fine else EMPTY

    def oldest(self) -> Snapshot:
        return self._coarse[0] if self._coarse else EMPTY

    def at(self, t: float) -> Snapshot:
        """The newest snapshot taken at or before `t`, or the oldest one there is."""
        if self._fine and self._fine[0].at <= t:
            return self._fine[bisect_right([s.at for s in self._fine], t) - 1]
        i = bisect_right([s.at for s in self._coarse], t)
        return self._coarse[i - 1] if i else self.oldest()

    def delta(self, seconds: float, *, until: float | None = None) -> Delta:
        """From the snapshot `seconds` before `until` (default: the latest) to `until`."""
        end = self.latest() if until is None else self.at(until)
        return Delta(self.at(end.at - seconds), end)
