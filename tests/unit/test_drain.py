"""`Pipeline.drain`: the one loop both runtimes run the keyed steps with. No I/O."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.core.identity import Emit, ToContacts, ToIdentity
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.model.messages import Deliver, Resolve
from engine.model.state import ContactState
from engine.pipeline import IN_PROCESS, Decided, Failures, Output, Pipeline
from engine.storage import CachedItems, CachedStates, MemoryStore
from tests.helpers import open_policy, spine_rules
from tests.integration.journey import T0, segment

ORDER = segment("track", "o1", T0, userId="ada", event="Order Completed",
                properties={"products": [{"category": "books"}]})
# Who ada is: a reachable contact that opted in to email (the order alone could not be sent).
ADA = segment("identify", "i1", T0 - 1, userId="ada",
              traits={"email": "ada@example.com", "consent": {"email": True}})


def drain(pipeline: Pipeline, first: Emit, identity: MemoryStore, states: CachedStates,
          local: Callable[[Emit], bool] = lambda e: True,
          failures: Failures = IN_PROCESS) -> list[Output]:
    return list(pipeline.drain(first, identity_store=identity, states=states,
                               item_records=CachedItems(MemoryStore()), now=lambda: T0, local=local,
                               failures=failures))


def first_hop(pipeline: Pipeline) -> ToIdentity:
    first = pipeline.ingest("clickstream", ORDER, "clickstream")
    assert isinstance(first, ToIdentity) and isinstance(first.msg, Resolve)
    return first


def test_everything_local_runs_every_step_in_fifo_order() -> None:
    pipeline, identity = Pipeline(spine_rules(), open_policy()), MemoryStore()
    states = CachedStates(MemoryStore())
    known = pipeline.ingest("clickstream", ADA, "clickstream")
    assert isinstance(known, ToIdentity)
    drain(pipeline, known, identity, states)
    out = drain(pipeline, first_hop(pipeline), identity, states)
    decided = [o for o in out if isinstance(o, Decided)]
    actions = [o for o in out if isinstance(o, Action)]
    assert len(decided) == 1 and decided[0].state is not None
    contact = decided[0].key
    assert identity.get("user:ada") == contact.encode()
    assert [a.trigger_event_id for a in actions] == ["o1"]
    assert out.index(decided[0]) < out.index(actions[0])  # tracked before its actions leave
    assert not [o for o in out if isinstance(o, ToIdentity | ToContacts | DeadLetter)]


def test_the_first_message_runs_here_and_what_local_refuses_is_handed_back() -> None:
    pipeline, identity = Pipeline(spine_rules(), open_policy()), MemoryStore()
    states = CachedStates(MemoryStore())
    out = drain(pipeline, first_hop(pipeline), identity, states, local=lambda e: False)
    assert identity.get("user:ada") is not None  # the identity step ran in process
    assert len(out) == 1 and isinstance(out[0], ToContacts)
    assert isinstance(out[0].msg, Deliver) and out[0].msg.event.event_id == "o1"
    assert not states.dirty  # the contact step is another worker's


class Broken(CachedStates):
    def load(self, key: str) -> ContactState | None:
        raise OSError(f"disk gone under {key}")


@pytest.mark.parametrize("failures", [Failures(), Failures("pipeline", "app-contacts")])
def test_a_failed_decision_costs_its_message_as_a_dead_letter(failures: Failures) -> None:
    pipeline = Pipeline(spine_rules(), open_policy())
    resolve = first_hop(pipeline).msg
    assert isinstance(resolve, Resolve)
    first = ToContacts("c1", Deliver(event=resolve.event, via=""))
    out = drain(pipeline, first, MemoryStore(), Broken(MemoryStore()), failures=failures)
    assert len(out) == 1 and isinstance(out[0], DeadLetter)
    letter = out[0]
    assert letter.reason == "decision failed: OSError: disk gone under c1"
    assert (letter.source, letter.topic, letter.key) == (failures.source, failures.topic, "c1")
    assert pipeline.metrics.dead_letters["decision failed"] == 1
