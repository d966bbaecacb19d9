"""The input events in timestamp order across every input partition, as Kafka Streams does.

Faust hands an agent what its consumer delivered within a take, round-robin over the topics of
each fetch: a take need not hold the next records of every partition, so handling each take in
timestamp order alone lets a later event of one topic overtake an earlier one of another that
was still on its way. `InputOrder` holds the events of the ingest agent's takes (taken without
acknowledgement: held events are not committed) and lets an event go only when no assigned
input partition that may hold an earlier one is still behind: each either has events held
(their first is the one to compare with) or was delivered up to its high watermark. A partition
behind stops the others for at most `max_idle` seconds (Kafka Streams' `max.task.idle.ms`),
and never past `max_held` events held: a partition that stays behind, or is slow to fetch,
delays the others a bounded time and costs nothing else.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["InputOrder"]


class InputOrder:
    """Events held per partition, released in timestamp order (each partition's own kept)."""

    def __init__(self, max_idle: float, max_held: int) -> None:
        self.max_idle, self.max_held = max_idle, max_held
        self.held: dict[Any, deque[Any]] = {}
        self.next_offset: dict[Any, int] = {}  # per partition: the offset after the last seen
        self.assigned: set[Any] = set()
        self.blocked_since: float | None = None

    def __len__(self) -> int:
        return sum(map(len, self.held.values()))

    def assign(self, starts: dict[Any, int]) -> None:
        """Partitions now assigned, each with the offset its events start from."""
        self.assigned |= starts.keys()
        for tp, offset in starts.items():
            self.next_offset.setdefault(tp, offset)

    def revoke(self, tps: Iterable[Any]) -> None:
        """Partitions gone: their held events are dropped (unacknowledged, so redelivered to
        their next owner)."""
        for tp in tps:
            self.assigned.discard(tp)
            self.held.pop(tp, None)
            self.next_offset.pop(tp, None)

    def add(self, events: Iterable[Any]) -> None:
        for event in events:
            m = event.message
            self.held.setdefault(m.tp, deque()).append(event)
            self.next_offset[m.tp] = m.offset + 1

    def release(self, highwater: Callable[[Any], int | None], now: float) -> list[Any]:
        """The events that may go now, in order. `highwater(tp)` is the partition's end as
        the consumer last fetched it (None before its first fetch)."""
        out: list[Any] = []
        held = self.held
        while any(held.values()):
            behind = [tp for tp in self.assigned
                      if not held.get(tp) and self._behind(tp, highwater)]
            if behind and len(self) < self.max_held:
                if self.blocked_since is None:
                    self.blocked_since = now
                if now - self.blocked_since < self.max_idle:
                    break
            elif not behind:
                self.blocked_since = None
            tp = min((q[0].message.timestamp, tp) for tp, q in held.items() if q)[1]
            out.append(held[tp].popleft())
        if not any(held.values()):
            self.blocked_since = None
        return out

    def _behind(self, tp: Any, highwater: Callable[[Any], int | None]) -> bool:
        end, seen = highwater(tp), self.next_offset.get(tp)
        return end is None or seen is None or end > seen
