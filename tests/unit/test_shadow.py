"""Shadow rules in the core and the pipeline: decided as if live, recorded, never delivered."""

from __future__ import annotations

import dataclasses

import msgspec

from engine.core.decide import Decision, decide
from engine.core.policy import DEFAULT_POLICY
from engine.model.events import Event
from engine.model.messages import Deliver, FireTimer
from engine.model.outreach import Contacted
from engine.model.state import MAX_TIMERS, Address, Consent, ContactState, Timer
from engine.ops import explain
from engine.runtime.kafka.action_headers import SHADOW_TYPE_PREFIX, ActionHeaders
from engine.sdk import Context, Proposal, Rule, RuleSet, on, on_timer, rule
from engine.testing import Scenario
from tests.helpers import spine_rules

T = 1_790_000_000.0  # 14:13 UTC: outside every channel's quiet hours
NIGHT = T + 9 * 3600  # 23:13 UTC: inside email's


def shadow(r: Rule) -> Rule:
    """A shadow copy of a rule (its own id, as rule ids are unique)."""
    return dataclasses.replace(r, id=f"{r.id}~shadow", mode="shadow")


def proposing(priority: float) -> Rule:
    @rule("loud", triggers=[on("track", "Order Completed")], mode="shadow")
    def loud(ctx: Context) -> Proposal:
        return Proposal(action="loud-offer", channels=("email",), priority=priority, value=9.0)

    return loud


def known() -> ContactState:
    return ContactState(contact_id="c1", addresses={"email": Address("a@b.c", T - 60)},
                        consent={"email": Consent(True, T - 60, "traits")})


def buy(event_id: str, t: float) -> Deliver:
    return Deliver(Event(event_id=event_id, source="clickstream", kind="track",
                         name="Order Completed", time=t, user_id="u1", categories=("baby",),
                         properties={"products": [{"category": "baby"}]}), via="user:u1")


def with_rules(*extra: Rule) -> RuleSet:
    return RuleSet([*spine_rules().rules.values(), *extra])


def decided(rules: RuleSet, t: float = T, state: ContactState | None = None) -> Decision:
    return decide(state or known(), "c1", buy("e1", t), t, rules, DEFAULT_POLICY)


def test_a_rule_in_shadow_records_and_returns_the_very_action_it_would_deliver_live() -> None:
    spine = spine_rules().rules
    live = decided(spine_rules())
    tried = RuleSet(dataclasses.replace(r, mode="shadow") if r.id == "first-purchase-in-category"
                    else r for r in spine.values())
    d = decided(tried)
    assert d.actions == [] and d.shadow_actions == live.actions  # same id, recipient, ...
    assert [(r.rule_id, r.outcome, r.shadow) for r in d.records] == [
        ("first-purchase-in-category", "chosen", True)]
    assert [msgspec.structs.replace(r, shadow=False) for r in d.records] == live.records
    assert d.state is not None
    assert d.state.history == () and d.state.outbox == () and d.state.outcomes == {}
    assert d.state.memory["first-purchase-in-category"].fires == 0
    assert "chosen    first-purchase-in-category (shadow) -> welcome-baby" in explain.render(
        d.state)


def test_a_shadow_copy_competes_with_its_live_original_as_if_live() -> None:
    first = spine_rules().rules["first-purchase-in-category"]
    live = decided(spine_rules())
    d = decided(with_rules(shadow(first)))
    assert d.actions == live.actions and d.shadow_actions == []
    assert [(r.rule_id, r.reason) for r in d.records if r.shadow] == [
        ("first-purchase-in-category~shadow", "outranked")]  # one action per decision
    assert [r for r in d.records if not r.shadow] == live.records
    assert d.state is not None and live.state is not None
    assert d.state.history == live.state.history and d.state.outbox == live.state.outbox


def test_a_shadow_candidate_that_outranks_a_live_one_does_not_stop_it() -> None:
    d = decided(with_rules(proposing(priority=1000.0)))
    assert [a.action for a in d.actions] == ["welcome-baby"]
    assert [a.action for a in d.shadow_actions] == ["loud-offer"]
    assert [(r.rule_id, r.outcome, r.reason) for r in d.records if r.shadow] == [
        ("loud", "chosen", "best score 1800")]


def test_a_shadow_candidate_a_live_one_outranks_is_recorded_as_outranked() -> None:
    d = decided(with_rules(proposing(priority=0.01)))
    assert [a.action for a in d.actions] == ["welcome-baby"] and d.shadow_actions == []
    assert [(r.rule_id, r.reason) for r in d.records if r.shadow] == [("loud", "outranked")]


def test_a_shadow_candidate_is_capped_by_live_history_and_never_adds_to_it() -> None:
    rules = RuleSet([proposing(priority=50.0)])
    state = known()
    for i in range(3):  # email's daily cap is 2: each would-be action would have been the 3rd
        d = decide(state, "c1", buy(f"e{i}", T + i), T + i, rules, DEFAULT_POLICY)
        assert d.state is not None
        state = d.state
        assert [r.outcome for r in d.records] == ["chosen"] and state.history == ()
    for i in range(2):
        state.record_contact(Contacted(T, "email", "live-news", "news", f"a{i}"))
    d = decide(state, "c1", buy("e9", T + 9), T + 9, rules, DEFAULT_POLICY)
    assert [(r.reason, r.shadow) for r in d.records] == [("capped", True)]


def test_a_shadow_deferral_in_quiet_hours_is_recorded_and_sets_no_timer() -> None:
    d = decided(RuleSet([proposing(priority=50.0)]), t=NIGHT)
    assert [(r.outcome, r.reason, r.shadow) for r in d.records] == [
        ("deferred", "quiet_hours_deferred", True)]
    assert d.state is not None and d.state.timers == () and d.shadow_actions == []


def test_a_shadow_rule_keeps_its_memory_and_timers_but_not_what_live_rules_read() -> None:
    @rule("stepper", triggers=[on("track", "Order Completed"), on_timer("later")],
          mode="shadow")
    def stepper(ctx: Context) -> Proposal | None:
        if ctx.timer is not None:
            return Proposal(action="follow-up", channels=("email",))
        ctx.memory.step += 1
        ctx.set_stage("decision")
        ctx.set_lifecycle("customer")
        assert ctx.add_interest("tents", 5.0) == 5.0  # the value it would have
        ctx.schedule("later", 3600)
        return None

    d = decided(RuleSet([stepper]))
    untouched = decided(RuleSet([]))
    state = d.state
    assert state is not None and untouched.state is not None
    assert (state.stage, state.lifecycle, state.scores) == (
        untouched.state.stage, untouched.state.lifecycle, untouched.state.scores)
    assert state.memory["stepper"].step == 1
    [timer] = state.timers
    assert timer.shadow and timer.rule_id == "stepper"
    fired = decide(state, "c1", FireTimer(timer_id=timer.timer_id, due=timer.due),
                   timer.due, RuleSet([stepper]), DEFAULT_POLICY)
    assert [a.action for a in fired.shadow_actions] == ["follow-up"] and fired.actions == []
    assert fired.state is not None and fired.state.outbox == ()


def test_a_shadow_rule_that_raises_is_recorded_in_shadow() -> None:
    @rule("broken", triggers=[on("track", "Order Completed")], mode="shadow")
    def broken(ctx: Context) -> None:
        raise ValueError("no")

    d = decided(with_rules(broken))
    assert d.rule_errors == [("broken", "ValueError: no")]
    assert d.state is not None
    assert [(r.outcome, r.shadow) for r in d.state.decisions if r.rule_id == "broken"] == [
        ("error", True)]


def test_shadow_timers_are_the_first_to_go_when_timers_are_full() -> None:
    state = ContactState(contact_id="c1")
    state.add_timer(Timer("s", "later", "shadowed", T + 1, T, "e0", shadow=True))
    for i in range(MAX_TIMERS):
        state.add_timer(Timer(f"t{i}", f"n{i}", "live", T + 100 + i, T, "e0"))
    assert len(state.timers) == MAX_TIMERS and all(not t.shadow for t in state.timers)


def test_the_runtime_hands_shadow_actions_to_on_shadow_and_counts_them_apart() -> None:
    s = Scenario(RuleSet([proposing(priority=50.0)]))
    s.identify("u1", email="a@b.c", consent={"email": True})
    assert s.track("u1", "Order Completed") == []
    assert [a.action for a in s.shadow_actions] == ["loud-offer"]
    m = s.runtime.pipeline.metrics
    assert m.shadow_actions == {("loud", "email"): 1}
    assert m.shadow_candidates == {"loud": 1} and m.shadow_suppressions == {}
    assert m.candidates == {} and m.actions == {} and m.suppressions == {}
    names = {f.name for f in m.collect()}
    assert {"kairos_shadow_candidates", "kairos_shadow_actions",
            "kairos_shadow_suppressions"} <= names


def test_shadow_actions_carry_their_own_cloudevents_type() -> None:
    d = decided(with_rules(proposing(priority=1000.0)))
    headers = dict(ActionHeaders("shop", SHADOW_TYPE_PREFIX).of(d.shadow_actions[0]))
    assert headers["ce_type"] == b"io.kairos.shadow-action.email"
    assert headers["ce_id"] == d.shadow_actions[0].action_id.encode()
