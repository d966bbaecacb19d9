"""The runtime's timer index: next timer per contact, superseded entries skipped, memory bounded."""

from __future__ import annotations

from engine.model.state import ContactState, Timer
from engine.runtime.timers import COMPACT_SLACK, TimerIndex


def state(contact: str, *dues: float) -> ContactState:
    return ContactState(contact_id=contact, timers=[
        Timer(timer_id=f"{contact}-{d}", name="t", rule_id="r", due=d, set_at=0,
              cause_event_id="e") for d in dues])


def test_only_the_next_timer_of_each_contact_fires_and_rescheduling_supersedes() -> None:
    idx = TimerIndex()
    idx.track(state("a", 50, 10))
    idx.track(state("b", 20))
    idx.track(state("b", 30))  # rescheduled: the entry at 20 is now stale
    assert [(k, m.timer_id) for k, m, _ in idx.pop_due(25)] == [("a", "a-10")]
    assert idx.pop_due(25) == []  # "a" waits for its state to be written again
    idx.track(state("a", 50))
    assert [k for k, _, _ in idx.pop_due(100)] == ["b", "a"]
    assert len(idx) == 0 and idx.next_due() is None


def test_memory_stays_proportional_to_contacts_not_to_reschedules() -> None:
    idx = TimerIndex()
    for i in range(50_000):  # an inactivity timer pushed back by every event of 10 contacts
        idx.track(state(f"c{i % 10}", 1_000 + i))
    assert len(idx) == 10
    assert len(idx._heap) <= 2 * len(idx) + COMPACT_SLACK + 1
    assert sorted(k for k, _, _ in idx.pop_due(10**9)) == [f"c{i}" for i in range(10)]


def test_dropping_partitions_forgets_their_contacts() -> None:
    idx = TimerIndex()
    idx.track(state("a", 10), partition=0)
    idx.track(state("b", 10), partition=1)
    idx.drop_partitions({1})
    assert [k for k, _, _ in idx.pop_due(100)] == ["a"]
