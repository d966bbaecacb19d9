"""The four first rules: first purchase per category, cart abandonment, email click, social care."""

from engine.testing import Scenario
from tests.helpers import module_rules, open_policy, reachable


def scenario(*modules: str) -> Scenario:
    return reachable(Scenario(module_rules(*modules), policy=open_policy()), "u1", "u2")


def test_first_purchase_in_a_category_only_the_first_time() -> None:
    s = scenario("first_purchase.py")
    buy = {"products": [{"category": "books"}, {"category": "home"}]}
    [a] = s.track("u1", "Order Completed", properties=buy)  # one action per decision
    assert a.action in ("welcome-books", "welcome-home")
    assert s.track("u1", "Order Completed", properties={"products": [{"category": "books"}]}) == []


def test_cart_reminder_after_30_minutes_unless_bought() -> None:
    s = scenario("cart_abandonment.py")
    s.track("u1", "Product Added", properties={"product_id": "sku-1"})
    assert s.advance(minutes=29) == []
    [a] = s.advance(minutes=2)
    assert (a.action, a.payload["product_id"]) == ("cart-reminder", "sku-1")
    s.track("u2", "Product Added", properties={"product_id": "sku-2"})
    s.track("u2", "Order Completed")
    assert s.advance(hours=1) == []


def test_email_click_personalises_the_website() -> None:
    s = scenario("email_engagement.py")
    [a] = s.email("a@b.c", "click", url="https://shop.example/baby")
    assert (a.channel, a.action, a.payload["clicked_url"]) == ("web", "related-content", "https://shop.example/baby")


def test_mentions_and_messages_become_crm_tasks_likes_do_not() -> None:
    s = scenario("social_care.py")
    assert s.social("@ada", "like") == []
    [a] = s.social("@ada", "mention", text="help!", post_id="p1")
    assert (a.channel, a.action, a.payload["text"]) == ("crm", "answer-social", "help!")
