from engine.testing import Scenario
from tests.helpers import module_rules, open_policy, reachable


def scenario() -> Scenario:
    return reachable(Scenario(module_rules("journey.py"), policy=open_policy()), "u1", "u2")


def test_a_lead_on_the_pricing_page_is_qualified_once() -> None:
    s = scenario()
    assert s.page("u1", "/pricing") == []  # a prospect, not a lead yet
    s.track("u1", "Signed Up")
    [a] = s.page("u1", "/pricing")
    assert (a.action, a.channel) == ("qualify-lead", "crm")
    assert s.page("u1", "/pricing") == []


def test_post_purchase_survey_three_days_later() -> None:
    s = scenario()
    s.track("u1", "Order Completed", properties={"order_id": "o-7"})
    assert [a.action for a in s.advance(days=2)] == []
    got = [a for a in s.advance(days=1, minutes=1) if a.rule_id == "post-purchase-follow-up"]
    assert [(a.action, a.payload) for a in got] == [("satisfaction-survey", {"order_id": "o-7"})]


def test_second_purchase_nudge_after_30_quiet_days_cancelled_by_a_purchase() -> None:
    s = scenario()
    s.track("u1", "Order Completed", properties={"products": [{"category": "home"}]})
    nudges = [a for a in s.advance(days=31) if a.rule_id == "second-purchase-nudge"]
    assert [(a.action, a.payload) for a in nudges] == [("second-purchase-offer", {"categories": ["home"]})]
    s2 = scenario()
    s2.track("u2", "Order Completed")
    s2.advance(days=10)
    s2.track("u2", "Order Completed")
    assert [a for a in s2.advance(days=40) if a.rule_id == "second-purchase-nudge"] == []
