"""At-least-once redelivery of a whole uncommitted batch: even a contact that is every event of
the batch decides nothing new the second time (its state remembers enough event ids)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.model.actions import Action
from engine.model.state import MAX_SEEN, ContactState, decode, encode, event_digest
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from tests.helpers import open_policy, spine_rules
from tests.integration.journey import T0, segment

BATCH = 2_000  # engine/runtime/kafka/clients.py MAX_BATCH: what a crash can leave uncommitted


def test_a_hot_contact_s_redelivered_batch_is_decided_once() -> None:
    assert MAX_SEEN > BATCH
    known = segment("identify", "hot-id", T0 - 1, userId="hot", traits={"email": "hot@example.com"})
    events = [known] + [segment("track", f"hot-{i}", T0 + i, userId="hot", event="Order Completed",
                      properties={"products": [{"category": f"cat{i % 300}"}]})
              for i in range(BATCH)]
    first: list[Action] = []
    rt = EmbeddedRuntime(Pipeline(spine_rules(), open_policy()), on_action=first.append)
    for raw in events:
        rt.submit(raw, "clickstream")
    assert len(first) >= 300  # a first purchase per category at least
    again: list[Action] = []
    rt.on_action = again.append
    for raw in events:  # the crash: the same batch once more, from the first record
        rt.submit(raw, "clickstream")
    assert {a.action_id for a in again} <= {a.action_id for a in first}
    assert rt.pipeline.metrics.duplicates == BATCH + 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3 * MAX_SEEN), min_size=1, max_size=3 * MAX_SEEN))
def test_seen_event_ids_answer_as_a_bounded_list_of_them_would(ids: list[int]) -> None:
    """The packed digests never disagree with a plain list of the last MAX_SEEN ids."""
    state, reference = ContactState(contact_id="c"), []
    for i in ids:
        fresh = i not in reference
        if fresh:
            reference = [*reference, i][-MAX_SEEN:]
        assert state.mark_seen(f"e{i}") is fresh
        assert state.seen_count() == len(reference)


def test_seen_event_ids_forget_the_oldest_beyond_the_bound() -> None:
    state = ContactState(contact_id="c")
    for i in range(MAX_SEEN + 10):
        assert state.mark_seen(f"e{i}")
    assert state.seen_count() == MAX_SEEN
    assert not state.mark_seen(f"e{MAX_SEEN + 9}") and not state.mark_seen("e10")  # remembered
    assert state.mark_seen("e0") and state.mark_seen("e9")  # beyond the bound: new again
    assert not state.mark_seen("e0")


def test_a_state_from_before_packed_digests_keeps_its_memory() -> None:
    old = ContactState(contact_id="c")
    old.seen_hashes = [int.from_bytes(event_digest(f"e{i}"), "big", signed=True) for i in range(5)]
    state = decode(encode(old))
    assert not state.mark_seen("e3") and state.mark_seen("e5")
    assert state.seen_hashes == [] and state.seen_count() == 6
