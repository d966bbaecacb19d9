from engine.testing import Scenario
from tests.helpers import module_rules, open_policy, reachable


def scenario() -> Scenario:
    return reachable(Scenario(module_rules("disengagement.py"), policy=open_policy()), "u1", "u2")


def test_a_viewed_product_not_added_within_two_hours_gets_a_reminder() -> None:
    s = scenario()
    s.track("u1", "Product Viewed", properties={"product_id": "sku-9", "category": "home"})
    [a] = s.advance(hours=2, minutes=1)
    assert (a.action, a.payload["product_id"]) == ("browse-reminder", "sku-9")


def test_adding_to_cart_or_buying_cancels_the_browse_reminder() -> None:
    for exit_event in ("Product Added", "Order Completed"):
        s = scenario()
        s.track("u1", "Product Viewed", properties={"product_id": "sku-9"})
        s.advance(minutes=30)
        s.track("u1", exit_event)
        assert s.advance(hours=3) == []


def test_emails_that_are_never_opened_switch_the_channel() -> None:
    s = scenario()
    s.identify("u1", email="a@b.c", consent={"push": True})
    for _ in range(4):
        assert s.email("a@b.c", "delivered") == []
        s.advance(days=2)
    [a] = s.email("a@b.c", "delivered")
    assert (a.action, a.channel, a.payload) == ("re-engage", "push", {"delivered_30d": 5})


def test_a_contact_who_opens_is_not_re_engaged() -> None:
    s = scenario()
    s.identify("u1", email="a@b.c", consent={"push": True})
    s.email("a@b.c", "open")
    for _ in range(6):
        assert s.email("a@b.c", "delivered") == []
