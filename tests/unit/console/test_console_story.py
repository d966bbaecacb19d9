"""A contact's story: each event with every candidate's fate, addresses masked unless allowed."""

from engine.console.story import profile, timeline
from engine.core.policy import Policy
from engine.testing import UNLIMITED_POLICY, Scenario
from tests.helpers import spine_rules


def story_of_a_buyer():
    s = Scenario(spine_rules(), policy=Policy.load(UNLIMITED_POLICY))
    s.identify("u1", email="ann@example.com", consent={"email": True})
    s.track("u1", "Order Completed", properties={"products": [{"category": "garden"}]})
    return s.contact("user:u1")


def test_the_timeline_puts_each_decision_under_the_event_that_triggered_it():
    st = story_of_a_buyer()
    entries = timeline(st, unmasked=True)
    assert [e.title for e in entries] == ["Order Completed", "identify"]
    order = entries[0]
    assert [(d.rule_id, d.outcome) for d in order.decisions] == [
        ("first-purchase-in-category", "chosen")]
    [chosen] = order.decisions
    assert order.recipient == {chosen.action_id: "ann@example.com"}
    assert entries[1].decisions == []


def test_addresses_are_masked_for_users_not_allowed_to_see_them():
    st = story_of_a_buyer()
    masked = profile(st, unmasked=False)
    assert "email:a•••@example.com" in masked.identifiers
    assert masked.addresses == [("email", "a•••@example.com")]
    assert masked.traits["email"] == "a•••@example.com"
    assert "ann@example.com" not in repr(timeline(st, unmasked=False))
    assert profile(st, unmasked=True).addresses == [("email", "ann@example.com")]


def test_consent_says_when_and_from_which_event():
    st = story_of_a_buyer()
    [(key, granted, at, how, event_id)] = profile(st, unmasked=True).consent
    identify = next(e for e in st.recent if e.kind == "identify")
    assert (key, granted, how, event_id) == ("email", True, "traits", identify.event_id)
    assert at == identify.time
