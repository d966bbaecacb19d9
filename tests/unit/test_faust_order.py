"""The Faust runtime's input order: events go in timestamp order across partitions, and a
partition still behind holds the others back a bounded time only."""

from __future__ import annotations

from dataclasses import dataclass

from engine.runtime.faust.order import InputOrder

A, B = ("clickstream", 0), ("email-events", 1)


@dataclass(frozen=True)
class Message:
    tp: tuple[str, int]
    offset: int
    timestamp: float


@dataclass(frozen=True)
class Event:
    message: Message


def ev(tp: tuple[str, int], offset: int, ts: float) -> Event:
    return Event(Message(tp, offset, ts))


def released(order: InputOrder, ends: dict[tuple[str, int], int | None],
             now: float = 0.0) -> list[tuple[tuple[str, int], int]]:
    return [(e.message.tp, e.message.offset) for e in order.release(ends.get, now)]


def test_events_go_in_timestamp_order_across_partitions_each_keeping_its_own() -> None:
    order = InputOrder(max_idle=1.0, max_held=100)
    order.assign({A: 0, B: 0})
    order.add([ev(A, 0, 1.0), ev(A, 1, 4.0), ev(B, 0, 2.0), ev(B, 1, 3.0), ev(A, 2, 3.5)])
    assert released(order, {A: 3, B: 2}) == [(A, 0), (B, 0), (B, 1), (A, 1), (A, 2)]
    assert len(order) == 0


def test_a_partition_behind_holds_later_events_until_its_own_arrive() -> None:
    order = InputOrder(max_idle=1.0, max_held=100)
    order.assign({A: 0, B: 0})
    order.add([ev(A, 0, 1.0), ev(A, 1, 5.0), ev(B, 0, 2.0)])
    # B has a record not delivered yet (its end is 2): A's later event must wait for it
    assert released(order, {A: 2, B: 2}) == [(A, 0), (B, 0)]
    assert len(order) == 1
    order.add([ev(B, 1, 3.0)])
    assert released(order, {A: 2, B: 2}, now=0.1) == [(B, 1), (A, 1)]


def test_past_max_idle_the_held_events_go_anyway() -> None:
    order = InputOrder(max_idle=1.0, max_held=100)
    order.assign({A: 0, B: 5})
    order.add([ev(A, 0, 1.0)])
    assert released(order, {A: 1, B: 9}, now=10.0) == []
    assert released(order, {A: 1, B: 9}, now=10.5) == []
    assert released(order, {A: 1, B: 9}, now=11.0) == [(A, 0)]


def test_an_unfetched_partition_counts_as_behind_and_a_caught_up_one_does_not() -> None:
    order = InputOrder(max_idle=1.0, max_held=100)
    order.assign({A: 0, B: 7})
    order.add([ev(A, 0, 1.0)])
    assert released(order, {A: 1, B: None}) == []
    assert released(order, {A: 1, B: 7}) == [(A, 0)]  # B was read to its end


def test_never_more_than_max_held_events_wait() -> None:
    order = InputOrder(max_idle=60.0, max_held=3)
    order.assign({A: 0, B: 0})
    order.add([ev(A, 0, 1.0), ev(A, 1, 2.0)])
    assert released(order, {A: 2, B: 1}) == []
    order.add([ev(A, 2, 3.0)])
    assert released(order, {A: 3, B: 1}) == [(A, 0)]  # back under the bound, B still behind


def test_a_revoked_partition_drops_its_held_events_and_stops_holding_the_others() -> None:
    order = InputOrder(max_idle=60.0, max_held=100)
    order.assign({A: 0, B: 0})
    order.add([ev(A, 0, 1.0), ev(B, 0, 0.5)])
    order.revoke([B])
    assert released(order, {A: 1, B: 9}) == [(A, 0)]
    assert len(order) == 0
