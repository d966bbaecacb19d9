"""The runtime's index of pending timers: which contact to wake, and when.

Timers themselves live in contact state (so they survive restarts and move with merges); this
index is only a heap rebuilt from state on start or partition assignment. An entry may be stale
(the timer was cancelled or fired): the core ignores a `FireTimer` it has no timer for.
"""

from __future__ import annotations

import heapq

from engine.messages import FireTimer
from engine.state import ContactState


class TimerIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[float, str, str, int]] = []
        self._known: set[str] = set()

    def track(self, state: ContactState | None, partition: int = 0) -> None:
        """Index the timers of a state just written (new ones only)."""
        if state is None:
            return
        for t in state.timers:
            if t.timer_id not in self._known:
                self._known.add(t.timer_id)
                heapq.heappush(self._heap, (t.due, state.contact_id, t.timer_id, partition))

    def pop_due(self, now: float) -> list[tuple[str, FireTimer, int]]:
        """Timers due at or before `now`, as (contact key, message, partition)."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            due, key, tid, partition = heapq.heappop(self._heap)
            self._known.discard(tid)
            out.append((key, FireTimer(timer_id=tid, due=due), partition))
        return out

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget timers of partitions this worker no longer owns."""
        keep = [e for e in self._heap if e[3] not in partitions]
        for e in self._heap:
            if e[3] in partitions:
                self._known.discard(e[2])
        heapq.heapify(keep)
        self._heap = keep

    def __len__(self) -> int:
        return len(self._heap)
