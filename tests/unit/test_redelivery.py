"""At-least-once redelivery of a whole uncommitted batch: even a contact that is every event of
the batch decides nothing new the second time (its state remembers enough event ids)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.actions import Action
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.state import MAX_SEEN, SeenIndex
from tests.helpers import open_policy, spine_rules
from tests.integration.journey import T0, segment

BATCH = 2_000  # engine/runtime/stream.py MAX_BATCH: what a crash can leave uncommitted


def test_a_hot_contact_s_redelivered_batch_is_decided_once() -> None:
    assert MAX_SEEN > BATCH
    events = [segment("track", f"hot-{i}", T0 + i, userId="hot", event="Order Completed",
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
    assert rt.pipeline.metrics.duplicates == BATCH


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3 * MAX_SEEN), min_size=1, max_size=3 * MAX_SEEN),
       st.integers(0, 300))
def test_the_seen_index_answers_as_a_scan_of_the_list_would(ids: list[int], min_length: int
                                                             ) -> None:
    """The set beside a long list never disagrees with the list, through appends and trims."""
    index, seen, reference = SeenIndex(min_length=min_length, capacity=2), [], []
    others = [[1, 2, 3] * 100 for _ in range(3)]  # other contacts push entries out of the index
    for n, h in enumerate(ids):
        fresh = h not in reference
        if fresh:
            reference = [*reference, h][-MAX_SEEN:]
        assert index.add(seen, h) is fresh
        assert seen == reference
        if n % 97 == 0:
            index.add(others[n % 3], -n - 1)


def test_the_seen_index_forgets_what_the_list_trimmed() -> None:
    index, seen = SeenIndex(), []
    for h in range(MAX_SEEN + 10):
        assert index.add(seen, h)
    assert len(seen) == MAX_SEEN
    assert not index.add(seen, MAX_SEEN + 9) and not index.add(seen, 10)  # remembered
    assert index.add(seen, 0) and index.add(seen, 9)  # trimmed away: new again
    assert not index.add(seen, 0)
