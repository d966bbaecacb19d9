"""The pure core, message by message: duplicates, consent, timers, determinism, bounds."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.decide import decide
from engine.core.policy import DEFAULT_POLICY
from engine.model import state as state_codec
from engine.model.events import Event
from engine.model.messages import Deliver, FireTimer
from engine.model.state import (
    MAX_DECISIONS,
    MAX_HISTORY,
    MAX_OUTBOX,
    MAX_RECENT,
    MAX_SEEN,
    MAX_TALLIES,
    Address,
    Consent,
    ContactState,
)
from engine.testing import Scenario
from tests.helpers import spine_rules

RULES = spine_rules()
T = 1_790_000_000.0


def track(event_id: str, name: str, t: float, **props: object) -> Deliver:
    cats = tuple(p["category"] for p in props.get("products", ()))  # type: ignore[attr-defined]
    return Deliver(Event(event_id=event_id, source="clickstream", kind="track", name=name, time=t,
                         user_id="u1", categories=cats, properties=props), via="user:u1")


def email(event_id: str, name: str, t: float) -> Deliver:
    return Deliver(Event(event_id=event_id, source="email", kind="email", name=name, time=t,
                         email="a@b.c"), via="email:a@b.c")


def known() -> ContactState:
    """The consenting contact these tests mean: an email address and an opt-in to email."""
    return ContactState(contact_id="c1", addresses={"email": Address("a@b.c", T - 60)},
                        consent={"email": Consent(True, T - 60, "traits")})


def buy(event_id: str, t: float, category: str = "baby") -> Deliver:
    return track(event_id, "Order Completed", t, products=[{"category": category}])


def test_a_duplicate_event_decides_nothing_new_and_re_emits_the_same_ids() -> None:
    d1 = decide(known(), "c1", buy("e1", T), T, RULES, DEFAULT_POLICY)
    assert [a.action for a in d1.actions] == ["welcome-baby"]
    again = decide(d1.state, "c1", buy("e1", T), T + 5, RULES, DEFAULT_POLICY)
    assert again.duplicate and [a.action_id for a in again.actions] == [d1.actions[0].action_id]
    assert again.state is not None and again.state.count("track:Order Completed") == 1


def test_unsubscribe_revokes_email_before_the_next_decision_and_push_needs_opt_in() -> None:
    d = decide(None, "c1", email("e0", "unsubscribe", T), T, RULES, DEFAULT_POLICY)
    d = decide(d.state, "c1", buy("e1", T + 1), T + 1, RULES, DEFAULT_POLICY)
    assert d.actions == []  # email revoked, push never opted in
    assert d.state is not None
    assert [(r.rule_id, r.reason) for r in d.state.decisions] == [
        ("first-purchase-in-category", "no_consent")]
    s = Scenario(RULES)
    s.segment("identify", "u1", traits={"consent": {"push": True}},
              context={"device": {"token": "tok-1"}})
    s.email("a@b.c", "spamreport")  # unknown address: its own contact, not u1's
    s.identify("u1", email="a@b.c")
    [action] = s.track("u1", "Order Completed", properties={"products": [{"category": "baby"}]})
    assert action.channel == "push"  # email revoked on the merged contact, falls back to push


def test_a_purchase_cancels_the_pending_cart_reminder() -> None:
    added = track("e1", "Product Added", T, product_id="sku-1")
    d = decide(None, "c1", added, T, RULES, DEFAULT_POLICY)
    assert d.state is not None and len(d.state.timers) == 1
    timer = d.state.timers[0]
    assert timer.due == T + 1800
    d = decide(d.state, "c1", buy("e2", T + 600), T + 600, RULES, DEFAULT_POLICY)
    assert d.state is not None and d.state.timers == ()
    stale = decide(d.state, "c1", FireTimer(timer.timer_id, timer.due), T + 1800, RULES,
                   DEFAULT_POLICY)
    assert stale.actions == [] and not stale.changed


def test_a_due_timer_fires_once_and_a_replayed_timer_re_emits_the_same_action() -> None:
    d = decide(known(), "c1", track("e1", "Product Added", T, product_id="sku-1"), T, RULES,
               DEFAULT_POLICY)
    assert d.state is not None
    timer = d.state.timers[0]
    fired = decide(d.state, "c1", FireTimer(timer.timer_id, timer.due), T + 1800, RULES,
                   DEFAULT_POLICY)
    [action] = fired.actions
    assert action.action == "cart-reminder" and action.trigger_event_id == f"timer:{timer.timer_id}"
    again = decide(fired.state, "c1", FireTimer(timer.timer_id, timer.due), T + 1801, RULES,
                   DEFAULT_POLICY)
    assert [a.action_id for a in again.actions] == [action.action_id]


def test_state_stays_bounded_for_a_very_active_contact() -> None:
    state = None
    for i in range(3000):
        msg = buy(f"e{i}", T + i, category=f"cat{i % 400}") if i % 3 == 0 else \
            track(f"e{i}", f"Event {i % 300}", T + i)
        state = decide(state, "c1", msg, T + i, RULES, DEFAULT_POLICY).state
    assert state is not None
    assert len(state.recent) <= MAX_RECENT and state.seen_count() <= MAX_SEEN
    assert len(state.tallies) <= MAX_TALLIES and len(state.history) <= MAX_HISTORY
    assert len(state.decisions) <= MAX_DECISIONS and len(state.outbox) <= MAX_OUTBOX
    assert len(state_codec.encode(state)) < 64 * 1024
    assert state_codec.decode(state_codec.encode(state)) == state


def message(step: str, event_id: str, t: float) -> Deliver | None:
    if step == "buy":
        return buy(event_id, t, f"c{int(event_id[1:]) % 3}")
    if step == "add":
        return track(event_id, "Product Added", t, product_id="p")
    if step in ("unsub", "open"):
        return email(event_id, "unsubscribe" if step == "unsub" else "open", t)
    return None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["buy", "add", "unsub", "open", "wait"]), max_size=30))
def test_same_inputs_same_decisions_and_never_email_after_an_unsubscribe(steps: list[str]) -> None:
    def run() -> list[tuple[str, str, str]]:
        state: ContactState | None = None
        t, out, revoked = T, [], False
        for i, step in enumerate(steps):
            t += 60
            msg = message(step, f"e{i}", t)
            if msg is None:
                t += 3600
                due = [tm for tm in (state.timers if state else []) if tm.due <= t]
                results = [decide(state, "c1", FireTimer(tm.timer_id, tm.due), t, RULES,
                                  DEFAULT_POLICY) for tm in due[:1]]
            else:
                results = [decide(state, "c1", msg, t, RULES, DEFAULT_POLICY)]
            for r in results:
                state = r.state
                for a in r.actions:
                    assert not (revoked and a.channel == "email")
                    out.append((a.action_id, a.channel, a.action))
            revoked = revoked or step == "unsub"
        return out

    assert run() == run()


def test_state_schema_tolerates_records_written_before_new_fields() -> None:
    class OldState(msgspec.Struct, kw_only=True):
        contact_id: str
        stage: str = "awareness"

    old = msgspec.msgpack.encode(OldState(contact_id="c1", stage="decision"))
    assert state_codec.decode(old).stage == "decision"
