"""The rules SDK's primitives, each through the real core: windows, scores, stages, re-entry."""

from __future__ import annotations

import pytest

from engine.sdk import DAY, Context, Proposal, on, on_timer, rule
from engine.testing import Scenario
from tests.helpers import reachable


@rule("scorer", triggers=[on("page"), on("track", "Product Viewed")])
def scorer(ctx: Context) -> None:
    points = 2.0 if ctx.event.kind == "track" else 1.0
    for category in ctx.event.categories or ("general",):
        if ctx.add_score(category, points, half_life=14 * DAY) >= 8 and ctx.state.stage == "awareness":
            ctx.set_stage("consideration")


@rule("on-consideration", triggers=[on("stage", "consideration")])
def on_consideration(ctx: Context) -> Proposal:
    return Proposal(action="guide", channels=("email",), payload={"stage": ctx.event.name})


@rule("flow", triggers=[on("track", "Signed Up"), on_timer("step")], reentry=30 * DAY)
def flow(ctx: Context) -> Proposal | None:
    if ctx.timer is None:
        ctx.memory.step = 0
    ctx.memory.step += 1
    if ctx.memory.step < 3:
        ctx.schedule("step", after=DAY)
    return Proposal(action=f"step-{ctx.memory.step}", channels=("email",))


@rule("broken", triggers=[on("track", "Signed Up")])
def broken(ctx: Context) -> Proposal:
    return Proposal(action="x", channels=("email",), priority=ctx.state.no_such_field)  # type: ignore[attr-defined]


def test_scores_decay_with_their_half_life() -> None:
    s = Scenario([scorer])
    for _ in range(4):
        s.track("u1", "Product Viewed", properties={"category": "outdoor"})
    assert s.contact("u1").score("outdoor", s.now, 14 * DAY) == pytest.approx(8.0)
    s.advance(days=14)
    assert s.contact("u1").score("outdoor", s.now, 14 * DAY) == pytest.approx(4.0)
    s.advance(days=14)
    assert s.contact("u1").score("outdoor", s.now, 14 * DAY) == pytest.approx(2.0)


def test_a_stage_change_triggers_stage_rules_in_the_same_decision() -> None:
    s = reachable(Scenario([scorer, on_consideration]))
    for _ in range(3):
        assert s.track("u1", "Product Viewed", properties={"category": "outdoor"}) == []
    [action] = s.track("u1", "Product Viewed", properties={"category": "outdoor"})  # score 8
    assert (action.rule_id, action.payload) == ("on-consideration", {"stage": "consideration"})
    assert s.contact("u1").stage == "consideration"
    assert s.track("u1", "Product Viewed", properties={"category": "outdoor"}) == []  # once


def test_a_multi_step_flow_runs_to_its_end_and_respects_reentry() -> None:
    s = reachable(Scenario([flow]))
    assert [a.action for a in s.track("u1", "Signed Up")] == ["step-1"]
    assert [a.action for a in s.advance(days=1)] == ["step-2"]
    assert s.track("u1", "Signed Up") == []  # inside the re-entry window: ignored
    assert [a.action for a in s.advance(days=1)] == ["step-3"]  # its own timers still fire
    assert s.advance(days=5) == []
    s.advance(days=30)
    assert [a.action for a in s.track("u1", "Signed Up")] == ["step-1"]  # re-entered


def test_a_rule_that_raises_loses_its_say_but_others_still_decide() -> None:
    s = reachable(Scenario([flow, broken], rule_errors="record"))
    assert [a.action for a in s.track("u1", "Signed Up")] == ["step-1"]
    assert "no_such_field" in s.runtime.pipeline.rule_failures["broken"]
    assert s.runtime.pipeline.metrics.rule_errors["broken"] == 1
    errors = [d for d in s.contact("u1").decisions if d.outcome == "error"]
    assert [d.rule_id for d in errors] == ["broken"]


def test_window_counts_are_exact_up_to_their_bound() -> None:
    s = Scenario([])
    for _ in range(3):
        s.page("u1", "/pricing")
        s.advance(days=3)
    st = s.contact("u1")
    assert st.count_within("page:/pricing", 7 * DAY, s.now) == 2
    assert st.count_within("page:/pricing", 10 * DAY, s.now) == 3
    assert st.count("page:/pricing") == 3


def test_proposals_refuse_unknown_channels_and_bad_expiry() -> None:
    with pytest.raises(ValueError, match="unknown channel 'fax'"):
        Proposal(action="a", channels=("fax",))
    with pytest.raises(ValueError, match="needs at least one channel"):
        Proposal(action="a", channels=())
    with pytest.raises(ValueError, match="ttl must be positive"):
        Proposal(action="a", channels=("email",), ttl=0)


def test_a_category_trigger_wakes_the_rule_only_for_that_category() -> None:
    @rule("baby-only", triggers=[on("track", "Order Completed", category="baby")])
    def baby_only(ctx: Context) -> Proposal:
        return Proposal(action="baby", channels=("web",))

    s = Scenario([baby_only])
    assert s.track("u1", "Order Completed", properties={"products": [{"category": "home"}]}) == []
    [a] = s.track("u1", "Order Completed", properties={"products": [{"category": "baby"}]})
    assert a.action == "baby"
    assert str(baby_only.triggers[0]) == "track:Order Completed@baby"


def test_memory_remember_returns_what_it_replaced() -> None:
    from engine.model.state import RuleMemory

    mem = RuleMemory()
    assert mem.remember("zone", "temperate") is None
    assert mem.remember("zone", "tropical") == "temperate"
    assert mem.data == {"zone": "tropical"}
