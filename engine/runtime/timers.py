"""The runtime's index of pending timers: which contact to wake, and when.

Timers themselves live in contact state (so they survive restarts and move with merges); this
index only remembers each contact's *next* timer, rebuilt from state on start or partition
assignment. Rules reschedule often (an inactivity timer moves with every event), so superseded
heap entries are skipped when popped and the heap is compacted when they outnumber live ones:
memory stays proportional to the contacts with a pending timer, not to events.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from operator import attrgetter

from engine.model import state as state_codec
from engine.model.messages import FireTimer
from engine.model.state import ContactState

COMPACT_SLACK = 1024
_order = attrgetter("due", "timer_id")


class TimerIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[float, str, str, int]] = []
        self._next: dict[str, tuple[float, str, int]] = {}  # contact -> (due, timer id, partition)

    def track(self, state: ContactState | None, partition: int = 0) -> None:
        """Index the next timer of a state just written."""
        if state is None:
            return
        key = state.contact_id
        timers = state.timers
        if not timers:
            self._next.pop(key, None)
            return
        nxt = min(timers, key=_order) if len(timers) > 1 else timers[0]
        entry = (nxt.due, nxt.timer_id, partition)
        if self._next.get(key) != entry:
            self._next[key] = entry
            heapq.heappush(self._heap, (nxt.due, key, nxt.timer_id, partition))
            if len(self._heap) > 2 * len(self._next) + COMPACT_SLACK:
                self._compact()

    def track_stored(self, states: Iterable[tuple[str, bytes]], partitions: set[int],
                     partition_of: Callable[[str], int]) -> None:
        """Index the timers of the stored `states` (key, encoded state) whose key's partition
        is one of `partitions`: timers survive restarts and move with partitions."""
        if not partitions:
            return
        for key, raw in states:
            p = partition_of(key)
            if p in partitions:
                self.track(state_codec.decode(raw), p)

    def pop_due(self, now: float) -> list[tuple[str, FireTimer, int]]:
        """Timers due at or before `now`, as (contact key, message, partition).

        A popped contact leaves the index until its state is written again (`track`), which
        indexes its following timer.
        """
        out = []
        while self._heap and self._heap[0][0] <= now:
            due, key, tid, partition = heapq.heappop(self._heap)
            if self._next.get(key) != (due, tid, partition):
                continue  # superseded by a later track()
            del self._next[key]
            out.append((key, FireTimer(timer_id=tid, due=due), partition))
        return out

    def next_due(self) -> float | None:
        while self._heap:
            due, key, tid, partition = self._heap[0]
            if self._next.get(key) == (due, tid, partition):
                return due
            heapq.heappop(self._heap)
        return None

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget timers of partitions this worker no longer owns."""
        self._next = {k: v for k, v in self._next.items() if v[2] not in partitions}
        self._compact()

    def _compact(self) -> None:
        self._heap = [(due, key, tid, p) for key, (due, tid, p) in self._next.items()]
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._next)
