"""The librdkafka consumer returns a batch as soon as records are there, as aiokafka's
`getmany` does, instead of waiting for a full batch or the whole timeout; after an assignment
its first batch holds every partition's first fetch, so a batch is decided in produced order
across partitions."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import confluent_kafka as ck
import pytest
from aiokafka.errors import KafkaError

from engine.config import Settings
from engine.runtime.kafka import confluent
from engine.runtime.kafka.confluent import Consumer


class Message:
    """A consumed record, or an event librdkafka hands over in its place (`err`)."""

    def __init__(self, name: str, partition: int = 0, err: Any = None) -> None:
        self.name, self.p, self.err = name, partition, err

    def topic(self) -> str:
        return "in"

    def partition(self) -> int:
        return self.p

    def error(self) -> Any:
        return self.err

    def __repr__(self) -> str:
        return self.name


def end(partition: int) -> Message:
    return Message(f"end-{partition}", partition, ck.KafkaError(ck.KafkaError._PARTITION_EOF))


class Queue:
    """librdkafka's local queue, as `consume(n, timeout)` sees it: the calls it was made.

    `queued` is there already; each later call that may wait takes the next of `arriving`
    (what was fetched meanwhile) and runs the rebalance callback `during` it, if any.
    """

    def __init__(self, queued: list[Message], *arriving: list[Message],
                 during: dict[int, Callable[[], None]] | None = None) -> None:
        self.queued, self.arriving, self.during = queued, list(arriving), during or {}
        self.calls: list[tuple[int, float]] = []

    def consume(self, n: int, timeout: float) -> list[Message]:
        self.calls.append((n, timeout))
        if len(self.calls) in self.during:
            self.during[len(self.calls)]()
        if timeout > 0:
            if self.arriving:
                self.queued = self.queued + self.arriving.pop(0)
            elif not self.queued:
                time.sleep(timeout)
        taken, self.queued = self.queued[:n], self.queued[n:]
        return taken


def consumer(queue: Queue, max_batch: int = 3) -> Consumer:
    c = Consumer(Settings(broker="kafka://127.0.0.1:1"), max_batch=max_batch)
    c.c = queue  # type: ignore[assignment]
    return c


def assign(c: Consumer, *partitions: int) -> None:
    c.on_assign([ck.TopicPartition("in", p) for p in partitions])


def names(got: list[Any]) -> list[str]:
    return [m.name for m in got]


def test_what_is_queued_comes_back_without_waiting() -> None:
    queue = Queue([Message("a"), Message("b"), Message("c"), Message("d")])
    assert names(consumer(queue)._consume(0.25)) == ["a", "b", "c"]
    assert queue.calls == [(3, 0)]


def test_an_empty_queue_waits_for_the_first_record_only_then_takes_what_came_with_it() -> None:
    queue = Queue([], [Message("a"), Message("b")])
    assert names(consumer(queue)._consume(0.25)) == ["a", "b"]
    assert queue.calls == [(3, 0), (1, pytest.approx(0.25, abs=0.01)), (2, 0)]


def test_nothing_within_the_timeout_is_an_empty_batch() -> None:
    queue = Queue([])
    started = time.monotonic()
    assert consumer(queue)._consume(0.05) == []
    assert time.monotonic() - started >= 0.05
    assert queue.calls[:2] == [(3, 0), (1, pytest.approx(0.05, abs=0.01))]


def test_a_partition_end_is_no_record_and_the_wait_for_one_goes_on() -> None:
    queue = Queue([], [end(0)], [Message("a", 1)])
    assert names(consumer(queue)._consume(0.25)) == ["a"]
    assert len(queue.calls) == 4  # the end came first: waited again, then took the rest


def test_a_fatal_error_is_raised_as_the_aiokafka_error() -> None:
    fatal = ck.KafkaError(ck.KafkaError._FATAL, "broken", fatal=True)
    queue = Queue([Message("a"), Message("x", err=fatal)])
    with pytest.raises(KafkaError, match="broken"):
        consumer(queue)._consume(0.25)


def test_after_an_assignment_the_first_batch_holds_every_partitions_first_fetch() -> None:
    # Partition 0 had a committed offset and came back first; 1 was reset to the earliest
    # (a round trip more); 2 has nothing to read and says so.
    queue = Queue([Message("a0", 0), Message("b0", 0)], [end(2)], [Message("a1", 1)])
    c = consumer(queue, max_batch=10)
    assign(c, 0, 1, 2)
    assert names(c._consume(0.25)) == ["a0", "b0", "a1"]
    assert c.unfetched == set()
    # Once every partition has answered, a batch is what has arrived, without waiting.
    queue.queued = [Message("c0", 0)]
    assert names(c._consume(0.25)) == ["c0"]
    assert queue.calls[-1] == (10, 0)


def test_the_wait_for_the_first_fetches_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(confluent, "GATHER", 0.1)
    queue = Queue([Message("a0", 0)])
    c = consumer(queue, max_batch=10)
    assign(c, 0, 1)  # partition 1 never answers
    started = time.monotonic()
    assert names(c._consume(0.25)) == ["a0"]
    assert 0.1 <= time.monotonic() - started < 0.5
    assert c.unfetched == set()  # and holds up no later batch


def test_a_full_batch_is_not_held_back_for_the_other_partitions() -> None:
    queue = Queue([Message("a0", 0), Message("b0", 0), Message("c0", 0)])
    c = consumer(queue)
    assign(c, 0, 1)
    assert names(c._consume(0.25)) == ["a0", "b0", "c0"]
    assert queue.calls == [(3, 0)]


def test_records_of_a_partition_revoked_while_gathering_are_dropped() -> None:
    queue = Queue([Message("a0", 0), Message("a1", 1)], [Message("b2", 2)])
    c = consumer(queue, max_batch=10)
    assign(c, 0, 1, 2)
    queue.during = {2: lambda: c.on_revoke([ck.TopicPartition("in", 0)])}
    assert names(c._consume(0.25)) == ["a1", "b2"]
