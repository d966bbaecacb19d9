import io
from pathlib import Path

from engine.model import actions as action_codec
from engine.ops.replay import replay
from engine.sdk import DAY, RuleSet
from engine.testing import Scenario
from tests.helpers import module_rules, open_policy, reachable


def scenario() -> Scenario:
    s = Scenario(module_rules("catalogue.py"), policy=open_policy())
    return reachable(s, "u1", "u2", "u3")


def test_a_price_drop_of_ten_percent_reaches_those_who_viewed_or_carted_the_item() -> None:
    s = scenario()
    s.catalogue("sku-1", price=200.0, availability="in_stock", attributes={"name": "Tent"})
    s.track("u1", "Product Viewed", properties={"product_id": "sku-1"})
    s.track("u2", "Product Added", properties={"product_id": "sku-1"})
    s.track("u3", "Product Viewed", properties={"product_id": "sku-2"})
    s.advance(days=3)
    actions = s.catalogue("sku-1", price=170.0, availability="in_stock")
    assert sorted(a.contact_id for a in actions) == sorted(
        s.contact(u).contact_id for u in ("u1", "u2"))
    a = actions[0]
    assert (a.action, a.channel) == ("price-drop", "email")
    assert a.payload == {"item_id": "sku-1", "price": 170.0, "old_price": 200.0,
                         "currency": "EUR", "drop_pct": 15.0, "availability": "in_stock",
                         "name": "sku-1"}


def test_a_small_drop_or_an_old_view_gives_no_price_alert() -> None:
    s = scenario()
    s.catalogue("sku-1", price=100.0)
    s.track("u1", "Product Viewed", properties={"product_id": "sku-1"})
    assert s.catalogue("sku-1", price=95.0) == []  # 5%
    s.advance(days=15)
    assert s.catalogue("sku-1", price=50.0) == []  # viewed 15 days ago


def test_a_wishlisted_item_back_in_stock_is_announced() -> None:
    s = scenario()
    s.catalogue("sku-7", price=30.0, availability="out_of_stock", attributes={"name": "Lamp"})
    s.track("u1", "Product Added to Wishlist", properties={"product_id": "sku-7"})
    s.track("u2", "Product Viewed", properties={"product_id": "sku-7"})  # viewed only
    s.advance(days=20)
    [a] = s.catalogue("sku-7", price=30.0, availability="in_stock", attributes={"name": "Lamp"})
    assert (a.action, a.contact_id, a.payload["name"]) == (
        "back-in-stock", s.contact("u1").contact_id, "Lamp")
    assert s.catalogue("sku-7", price=30.0, availability="in_stock") == []  # no change


def test_the_policy_applies_to_catalogue_alerts() -> None:
    s = Scenario(module_rules("catalogue.py"), policy=open_policy())
    s.track("u1", "Product Viewed", properties={"product_id": "sku-1"})  # no consent given
    s.catalogue("sku-1", price=100.0)
    assert s.catalogue("sku-1", price=50.0) == []
    [record] = [r for r in s.contact("u1").decisions if r.rule_id == "price-drop"]
    assert (record.outcome, record.reason) == ("suppressed", "unreachable")


def test_cooldown_holds_a_second_drop_back() -> None:
    s = scenario()
    s.catalogue("sku-1", price=100.0)
    s.track("u1", "Product Viewed", properties={"product_id": "sku-1"})
    assert len(s.catalogue("sku-1", price=80.0)) == 1
    s.advance(days=1)
    assert s.catalogue("sku-1", price=60.0) == []
    s.advance(seconds=7 * DAY)
    s.track("u1", "Product Viewed", properties={"product_id": "sku-1"})
    assert len(s.catalogue("sku-1", price=40.0)) == 1


def test_a_catalogue_record_needs_no_user_and_is_decoded_strictly() -> None:
    s = scenario()
    s.send(b'{"item_id": "sku-1", "price": "cheap", "timestamp": 1790000000}')
    s.send(b'{"item_id": "sku-1", "availability": "gone", "timestamp": 1790000000}')
    s.send(b'{"item_id": "sku-1", "price": -1, "timestamp": 1790000000}')
    s.send(b'{"item_id": "sku-1", "price": 10, "timestamp": 1790000000}')  # no user: fine
    assert [d.reason for d in s.dead_letters] == [
        "schema violation: Expected `float | null`, got `str` - at `$.price`",
        "schema violation: Invalid enum value 'gone' - at `$.availability`",
        "schema violation: price must be a finite amount, not negative - at `$.price`"]


def test_a_forgotten_contact_is_not_brought_back_by_a_catalogue_change() -> None:
    s = scenario()
    s.catalogue("sku-1", price=100.0)
    s.track("u1", "Product Viewed", properties={"product_id": "sku-1"})
    contact = s.contact("u1").contact_id
    s.runtime.forget(contact)
    assert s.catalogue("sku-1", price=50.0) == []
    s.runtime.flush()
    assert s.runtime.contacts.get(contact) is None


def test_the_documented_example_replays_alike_in_one_process_and_in_two() -> None:
    example = Path(__file__).parents[3] / "docs" / "examples" / "catalogue.jsonl"
    files = []
    for jobs in (1, 2):
        out = io.BytesIO()
        replay(example, RuleSet.load(), out=out, policy=open_policy(), jobs=jobs)
        files.append(out.getvalue())
    assert files[0] == files[1]
    alerts = [(a.rule_id, a.recipient) for a in map(action_codec.decode, files[0].splitlines())
              if a.rule_id in ("price-drop", "back-in-stock")]
    assert alerts == [("price-drop", "ada@example.com"), ("price-drop", "bob@example.com"),
                      ("back-in-stock", "bob@example.com")]
