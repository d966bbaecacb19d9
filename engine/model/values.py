"""The values of an event's field over time, kept only for the fields rules declare.

A rule that asks "the price at the last Product Viewed" or "the highest price viewed in 7
days" declares `values=[("track:Product Viewed", "price")]`; the state then keeps, per declared
(event key, field), the latest value and the numbers that can still be a window's maximum: a
list falling in value as time rises (a value followed by one at least as large can never be the
maximum of a window ending now). The maximum of any window is the first of them inside it,
exact for every window length, within `MAX_PEAKS` of them (beyond, the oldest go: the answer is
then the maximum over the span kept).
"""

from __future__ import annotations

import bisect
from typing import Any

import msgspec

__all__ = ["MAX_PEAKS", "MAX_VALUES", "Observed", "merged", "observed", "value_key"]

MAX_VALUES = 64  # declared (event key, field) pairs kept per contact
MAX_PEAKS = 20


class Observed(msgspec.Struct, gc=False, array_like=True):
    """One field's latest value (by event time) and the peaks of its numbers."""

    last: Any
    at: float
    peaks: tuple[tuple[float, float], ...] = ()  # (time, number): time rising, number falling

    def max_within(self, seconds: float, now: float) -> float | None:
        """The largest number seen in (now - seconds, now], or None."""
        peaks = self.peaks
        i = bisect.bisect_right(peaks, now - seconds, key=_time)
        return peaks[i][1] if i < len(peaks) else None


def value_key(key: str, field: str) -> str:
    """The state's key for a declared field of an event key (`track:Product Viewed|price`)."""
    return f"{key}|{field}"


def observed(held: Observed | None, at: float, value: Any) -> Observed:
    """`held` (or a new record) after `value` was seen at `at`; an older value only adds to the
    peaks, never replaces the latest."""
    if held is None:
        held = Observed(last=value, at=at)
    elif at >= held.at:
        held.last, held.at = value, at
    if isinstance(value, int | float) and not isinstance(value, bool):
        held.peaks = _with_peak(held.peaks, at, float(value))
    return held


def merged(mine: Observed, theirs: Observed) -> Observed:
    """Two contacts' records of one field as one (an identity merge): the later value, and the
    peaks of both."""
    out = Observed(last=mine.last, at=mine.at, peaks=mine.peaks)
    if theirs.at > mine.at:
        out.last, out.at = theirs.last, theirs.at
    for at, number in theirs.peaks:
        out.peaks = _with_peak(out.peaks, at, number)
    return out


def _with_peak(
    peaks: tuple[tuple[float, float], ...], at: float, number: float
) -> tuple[tuple[float, float], ...]:
    i = bisect.bisect_right(peaks, at, key=_time)
    if any(later >= number for _, later in peaks[i:]):
        return peaks  # a later number at least as large outlives it in every window
    keep = i
    while keep and peaks[keep - 1][1] <= number:
        keep -= 1
    return (*peaks[:keep], (at, number), *peaks[i:])[-MAX_PEAKS:]


def _time(peak: tuple[float, float]) -> float:
    return peak[0]
