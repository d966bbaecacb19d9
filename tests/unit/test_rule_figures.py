"""Per-rule figures the console's Rules page reads: how long each rule's run takes, when it last
proposed, and its actions and their conversions per arm (treated, or held out as control)."""

from __future__ import annotations

import msgspec
import pytest

from engine.core.observe import observe
from engine.core.policy import Policy
from engine.model.events import Event
from engine.model.outreach import Contacted
from engine.model.state import ContactState
from engine.obs.metrics import Metrics
from engine.sdk import Context, Proposal, on, rule
from engine.testing import UNLIMITED_POLICY, Scenario

DAY = 86_400.0


@rule("promo", triggers=[on("track", "Product Viewed")])
def promo(ctx: Context) -> Proposal:
    return Proposal(action=f"promo-{ctx.event.properties.get('n', 0)}", channels=("email",))


@rule("broken", triggers=[on("track", "Product Viewed")])
def broken(ctx: Context) -> Proposal:
    raise RuntimeError("a rule bug")


def scenario(holdout: float = 0.0) -> Scenario:
    policy = msgspec.structs.replace(Policy.load(UNLIMITED_POLICY), holdout=holdout)
    s = Scenario([promo, broken], policy=policy, rule_errors="record")
    s.identify("u1", email="u1@example.com", consent={"email": True})
    return s


def metrics(s: Scenario) -> Metrics:
    return s.runtime.pipeline.metrics


def view(s: Scenario, n: int = 0) -> Contacted:
    [a] = s.track("u1", "Product Viewed", properties={"n": n})
    return next(h for h in s.contact("u1").history if h.action_id == a.action_id)


def test_a_purchase_within_the_window_converts_each_action_once_in_its_arm() -> None:
    s = scenario()
    view(s, 1)
    s.advance(hours=2)
    view(s, 2)
    assert metrics(s).exposures == {("promo", "treated"): 2}
    s.advance(days=1)
    s.track("u1", "Order Completed", properties={"revenue": 10})
    s.advance(hours=1)
    s.track("u1", "Order Completed", properties={"revenue": 20})  # converts nothing again
    assert metrics(s).conversions == {("promo", "treated"): 2}
    assert [h.converted for h in s.contact("u1").history] == [True, True]


def test_a_purchase_after_the_window_converts_nothing() -> None:
    s = scenario()
    view(s)
    s.advance(days=7, seconds=1)  # the default window is 7 days
    s.track("u1", "Order Completed")
    assert metrics(s).conversions == {}
    assert not s.contact("u1").history[-1].converted


def test_a_held_out_action_is_a_control_exposure_and_converts_in_control() -> None:
    s = scenario(holdout=0.999)
    assert view(s).control
    s.advance(days=2)
    s.track("u1", "Order Completed")
    assert metrics(s).exposures == {("promo", "control"): 1}
    assert metrics(s).conversions == {("promo", "control"): 1}


def test_observe_returns_the_conversions_and_credits_the_latest_treated_action_as_before() -> None:
    state = ContactState(contact_id="c1", history=(
        Contacted(0.0, "email", "old", "r-old", "a0"),  # outside the window
        Contacted(5 * DAY, "email", "held", "r-held", "a1", control=True),
        Contacted(6 * DAY, "email", "sent", "r-sent", "a2"),
        Contacted(6 * DAY, "email", "done", "r-done", "a3", converted=True),
    ))
    purchase = Event(event_id="e1", source="clickstream", kind="track",
                     name="Order Completed", time=8 * DAY)
    assert observe(state, purchase) == [("r-sent", False), ("r-held", True)]
    assert [h.converted for h in state.history] == [False, True, True, True]
    # The propensity evidence is unchanged: one credit, to the latest treated action.
    assert {k: o.positive for k, o in state.outcomes.items()} == {"done|email": 1}
    assert observe(state, msgspec.structs.replace(purchase, event_id="e2")) == []


def test_a_contact_record_from_before_conversions_decodes_unconverted() -> None:
    old = msgspec.msgpack.encode([1.0, "email", "promo-0", "promo", "a1", True, False])
    assert msgspec.msgpack.decode(old, type=Contacted).converted is False


def test_every_run_of_a_rule_is_timed_and_the_latest_candidate_dated() -> None:
    s = scenario()
    view(s)
    s.advance(hours=1)
    view(s, 1)
    m = metrics(s)
    assert sum(m.rule_seconds["promo"].counts) == 2
    assert sum(m.rule_seconds["broken"].counts) == 2  # a run that raises is timed too
    assert 0 < m.rule_seconds["promo"].sum < 1
    assert m.rule_last_fired == {"promo": pytest.approx(s.now)}
    samples = {(x.name, x.labels.get("rule"), x.labels.get("le")): x.value
               for f in m.registry.collect() for x in f.samples}
    assert samples[("kairos_rule_seconds_count", "promo", None)] == 2
    assert samples[("kairos_rule_seconds_bucket", "promo", "+Inf")] == 2
    assert samples[("kairos_rule_last_fired_timestamp_seconds", "promo", None)] == s.now
