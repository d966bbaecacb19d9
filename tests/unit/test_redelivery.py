"""At-least-once redelivery of a whole uncommitted batch: even a contact that is every event of
the batch decides nothing new the second time (its state remembers enough event ids)."""

from __future__ import annotations

from engine.actions import Action
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.state import MAX_SEEN
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
