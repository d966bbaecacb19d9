"""The promise of shadow mode, as a property: adding rules in shadow never changes what the live
rules decide for any contact, over any history.

Per contact: a shadow rule's timer takes its turn in the runtime's timer index, so contacts
whose timers fall due in the same tick may be woken in another order (each is decided alike).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.decide import Decision
from engine.core.policy import DEFAULT_POLICY
from engine.model import state as state_codec
from engine.model.explained import DecisionRecord
from engine.model.messages import ContactMessage
from engine.model.segment import CALL_TYPES
from engine.ops.generator import JourneyGenerator
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk import Context, Proposal, Rule, RuleSet, on, rule
from engine.storage import StateStore

SHIPPED = RuleSet.load()
KINDS = (*CALL_TYPES, "email", "social", "timer", "stage", "lifecycle")


def everywhere(priority: float, action_class: str) -> Rule:
    """A shadow rule proposing on every event, scheduling and moving what it may not."""

    @rule("everywhere", triggers=[on(k) for k in KINDS], mode="shadow")
    def body(ctx: Context) -> Proposal:
        ctx.set_stage("decision")
        ctx.add_interest("everything", 10.0)
        ctx.memory.step += 1
        if ctx.timer is None:
            ctx.schedule("again", 3600)
        return Proposal(action="shadow-offer", channels=("email", "push", "web"),
                        priority=priority, action_class=action_class)  # type: ignore[arg-type]

    return body


class Recording(Pipeline):
    """A pipeline keeping every live candidate record it decided, per contact."""

    def __init__(self, rules: RuleSet) -> None:
        super().__init__(rules, DEFAULT_POLICY)
        self.live_records: dict[str, list[DecisionRecord]] = defaultdict(list)

    def on_contact(self, states: StateStore, key: str, msg: ContactMessage,
                   now: float) -> Decision:
        decision = super().on_contact(states, key, msg, now)
        self.live_records[key].extend(r for r in decision.records if not r.shadow)
        return decision


def run(history: list[bytes], rules: RuleSet) -> tuple[Any, ...]:
    """What the live rules decided per contact: actions, records, and the live state."""
    pipeline = Recording(rules)
    actions: dict[str, list[tuple[str, str]]] = defaultdict(list)
    runtime = EmbeddedRuntime(pipeline, on_action=lambda a: actions[a.contact_id].append(
        (a.action_id, a.channel)))
    for raw in history:
        runtime.submit(raw)
    runtime.flush()
    live = {}
    for key, raw in runtime.contacts.items():
        s = state_codec.decode(raw)
        live[key] = (s.history, s.outbox, s.outcomes, s.stage, s.lifecycle, s.scores,
                     tuple(t for t in s.timers if not t.shadow),
                     {r: m.fires for r, m in s.memory.items() if rules.rules[r].mode == "live"})
    runtime.close()
    return actions, pipeline.live_records, live


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    contacts=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    copied=st.lists(st.sampled_from(sorted(SHIPPED.rules)), max_size=3, unique=True),
    loud=st.none() | st.tuples(st.floats(0.01, 1000.0),
                               st.sampled_from(["marketing", "transactional", "mandatory"])),
)
def test_shadow_rules_never_change_what_live_rules_decide(
        contacts: int, seed: int, copied: list[str], loud: tuple[float, str] | None) -> None:
    history = [g.value for g in JourneyGenerator(contacts, seed=seed, bad_ratio=0.0)]
    extra = [dataclasses.replace(SHIPPED.rules[i], id=f"{i}~shadow", mode="shadow")
             for i in copied]
    if loud is not None:
        extra.append(everywhere(*loud))
    with_shadow = RuleSet([*SHIPPED.rules.values(), *extra])
    actions, records, live = run(history, SHIPPED)
    assert run(history, with_shadow) == (actions, records, live)
