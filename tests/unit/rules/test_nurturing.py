from engine.testing import Scenario
from tests.helpers import module_rules, open_policy, reachable


def scenario() -> Scenario:
    return reachable(Scenario(module_rules("nurturing.py", "scoring.py"), policy=open_policy()), "u1", "u2")


def actions(out: list) -> list[str]:
    return [a.action for a in out if a.rule_id == "lead-nurture"]


def test_three_steps_two_days_apart_then_nothing() -> None:
    s = scenario()
    assert actions(s.track("u1", "Signed Up")) == ["guide-getting-started"]
    assert actions(s.advance(days=1)) == []
    assert actions(s.advance(days=1)) == ["guide-comparison"]
    assert actions(s.advance(days=2)) == ["case-study"]
    assert actions(s.advance(days=10)) == []
    assert s.contact("u1").memory["lead-nurture"].step == 3


def test_hands_over_to_sales_once_interest_reaches_the_threshold() -> None:
    s = scenario()
    s.track("u1", "Signed Up")
    for _ in range(6):  # 12 points in outdoor, still 10.9 two days later (half-life 14 days)
        s.track("u1", "Product Viewed", properties={"category": "outdoor"})
    [a] = [x for x in s.advance(days=2) if x.rule_id == "lead-nurture"]
    assert (a.action, a.channel, a.payload["domain"]) == ("sales-hand-over", "crm", "outdoor")
    assert s.advance(days=10) == []


def test_a_purchase_ends_the_sequence_and_reentry_waits_90_days() -> None:
    s = scenario()
    s.track("u1", "Signed Up")
    s.track("u1", "Order Completed", properties={"order_id": "o1"})
    assert actions(s.advance(days=5)) == []
    s.advance(days=10)
    assert actions(s.track("u1", "Signed Up")) == []  # inside the 90-day re-entry window
    s.advance(days=90)
    assert actions(s.track("u1", "Signed Up")) == ["guide-getting-started"]
