"""The librdkafka consumer returns a batch as soon as records are there, as aiokafka's
`getmany` does, instead of waiting for a full batch or the whole timeout."""

from __future__ import annotations

from typing import Any

from engine.config import Settings
from engine.runtime.kafka.confluent import Consumer


class Queue:
    """librdkafka's local queue, as `consume(n, timeout)` sees it: the calls it was made."""

    def __init__(self, queued: list[str], arriving: list[str]) -> None:
        self.queued, self.arriving = queued, arriving
        self.calls: list[tuple[int, float]] = []

    def consume(self, n: int, timeout: float) -> list[str]:
        self.calls.append((n, timeout))
        if not self.queued and timeout > 0:  # one arrives while it waits
            self.queued, self.arriving = self.arriving, []
        taken, self.queued = self.queued[:n], self.queued[n:]
        return taken


def consumer(queue: Queue) -> Consumer:
    c = Consumer(Settings(broker="kafka://127.0.0.1:1"), max_batch=3)
    c.c = queue  # type: ignore[assignment]
    return c


def test_what_is_queued_comes_back_without_waiting() -> None:
    queue = Queue(["a", "b", "c", "d"], [])
    got: Any = consumer(queue)._consume(0.25)
    assert got == ["a", "b", "c"]
    assert queue.calls == [(3, 0)]


def test_an_empty_queue_waits_for_the_first_record_only_then_takes_what_came_with_it() -> None:
    queue = Queue([], ["a", "b"])
    got: Any = consumer(queue)._consume(0.25)
    assert got == ["a", "b"]
    assert queue.calls == [(3, 0), (1, 0.25), (2, 0)]


def test_nothing_within_the_timeout_is_an_empty_batch() -> None:
    queue = Queue([], [])
    assert consumer(queue)._consume(0.25) == []
    assert queue.calls == [(3, 0), (1, 0.25)]
