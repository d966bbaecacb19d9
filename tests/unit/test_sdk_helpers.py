"""The SDK helpers that spare rules their boilerplate, each through the real core: per-key
cool-downs, keyed memory, purchases by product, filtered exit events, a field's last value and
its maximum within a window."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.errors import RuleError, RuleFailed
from engine.model import state as codec
from engine.model.state import RuleMemory
from engine.model.values import MAX_PEAKS, Observed, merged, observed
from engine.sdk import DAY, Context, Proposal, RuleSet, on, on_timer, rule
from engine.sdk.memory import MAX_KEYED_STORES, MAX_MEMORY_DATA, Memory
from engine.testing import Scenario
from tests.helpers import reachable


@rule("per-product", triggers=[on("track", "Product Viewed")])
def per_product(ctx: Context) -> Proposal:
    product = str(ctx.event.properties["product_id"])
    return Proposal(action="product-tip", channels=("email",), cooldown=30 * DAY,
                    cooldown_key=product, payload={"product_id": product})


def test_a_keyed_cool_down_holds_per_key_under_one_action_name() -> None:
    s = reachable(Scenario([per_product]))
    [first] = s.track("u1", "Product Viewed", properties={"product_id": "p1"})
    [other] = s.track("u1", "Product Viewed", properties={"product_id": "p2"})
    assert s.track("u1", "Product Viewed", properties={"product_id": "p1"}) == []
    assert (first.action, other.action) == ("product-tip", "product-tip")
    st = s.contact("u1")
    assert [h.key for h in st.history] == ["p1", "p2"]
    held = st.decisions[-1]
    assert (held.reason, held.cooldown_key) == ("cooling_down", "p1")
    s.advance(days=31)
    assert len(s.track("u1", "Product Viewed", properties={"product_id": "p1"})) == 1


def test_a_cooldown_key_is_bounded() -> None:
    with pytest.raises(ValueError, match="cooldown_key is a string of 1 to 128"):
        Proposal(action="a", channels=("email",), cooldown_key="x" * 129)


@rule("views", triggers=[on("track", "Product Viewed")])
def views(ctx: Context) -> None:
    seen = ctx.memory.keyed("views", ttl=14 * DAY, max_keys=3)
    seen.set(ctx.event.properties["product_id"], {"price": ctx.event.properties.get("price")})


def test_keyed_memory_expires_and_keeps_the_newest_keys() -> None:
    s = Scenario([views])
    for pid in ("a", "b", "c", "d"):
        s.track("u1", "Product Viewed", properties={"product_id": pid, "price": 10})
        s.advance(hours=1)
    kept = s.contact("u1").memory["views"].keyed["views"]
    assert list(kept) == ["b", "c", "d"]  # beyond max_keys the oldest went
    s.advance(days=15)
    s.track("u1", "Product Viewed", properties={"product_id": 7, "price": 3})
    assert s.contact("u1").memory["views"].keyed["views"] == {"7": (s.now, {"price": 3})}


def test_keyed_memory_reads_drop_expired_entries_and_survive_a_round_trip() -> None:
    mem = RuleMemory()
    store = Memory(mem, 100.0, "r").keyed("k", ttl=50.0)
    store.set("x", (1, 2))
    store.touch("y")
    assert store.items() == [("x", [1, 2]), ("y", None)]  # kept as msgpack gives it back
    decoded = codec.decode(codec.encode(codec.ContactState(contact_id="c", memory={"r": mem})))
    again = Memory(decoded.memory["r"], 120.0, "r").keyed("k", ttl=50.0)
    assert (again.get("x"), "y" in again, again.at("x")) == ([1, 2], True, 100.0)
    later = Memory(decoded.memory["r"], 150.0, "r").keyed("k", ttl=50.0)
    assert (len(later), later.get("x", "gone")) == (0, "gone")
    assert decoded.memory["r"].keyed["k"] == {}


def test_keyed_memory_refuses_unbounded_use() -> None:
    memory = Memory(RuleMemory(), 0.0, "r")
    with pytest.raises(ValueError, match="needs ttl > 0 and 1 <= max_keys <= 500"):
        memory.keyed("k", ttl=DAY, max_keys=10_000)
    for i in range(MAX_KEYED_STORES):
        memory.keyed(f"k{i}", ttl=DAY)
    with pytest.raises(ValueError, match="at most 8 keyed stores"):
        memory.keyed("one-more", ttl=DAY)


@rule("hoarder", triggers=[on("page")])
def hoarder(ctx: Context) -> None:
    ctx.memory.data[f"k{ctx.count('page')}"] = True


def test_free_memory_keeps_the_latest_keys_within_its_bound() -> None:
    s = Scenario([hoarder])
    for _ in range(MAX_MEMORY_DATA + 5):
        s.page("u1", "/")
    data = s.contact("u1").memory["hoarder"].data
    assert len(data) == MAX_MEMORY_DATA
    assert "k5" not in data and "k6" in data and f"k{MAX_MEMORY_DATA + 5}" in data


@rule("rebuy", triggers=[on("track", "Product Viewed")])
def rebuy(ctx: Context) -> Proposal | None:
    if ctx.purchased(ctx.event.properties["product_id"], within=30 * DAY):
        return None
    return Proposal(action="buy-it", channels=("email",))


def test_purchases_keep_their_product_ids() -> None:
    s = reachable(Scenario([rebuy]))
    s.track("u1", "Order Completed", properties={
        "order_id": "o1", "products": [{"product_id": "p1"}, {"sku": 42}, {"name": "no id"}]})
    assert s.contact("u1").purchases[-1].products == ("p1", "42")
    assert s.track("u1", "Product Viewed", properties={"product_id": "p1"}) == []
    assert s.track("u1", "Product Viewed", properties={"product_id": 42}) == []
    assert len(s.track("u1", "Product Viewed", properties={"product_id": "p9"})) == 1
    s.advance(days=31)
    assert len(s.track("u1", "Product Viewed", properties={"product_id": "p1"})) == 1


def test_a_purchase_keeps_a_bounded_number_of_product_ids() -> None:
    s = Scenario([])
    s.track("u1", "Order Completed",
            properties={"products": [{"product_id": f"p{i}"} for i in range(50)]})
    assert s.contact("u1").purchases[-1].products == tuple(f"p{i}" for i in range(20))


@rule("cart", triggers=[on("track", "Product Added"), on_timer("remind")])
def cart(ctx: Context) -> Proposal | None:
    if ctx.timer is None:
        product = ctx.event.properties["product_id"]
        ctx.schedule(f"remind-{product}", after=3600, payload={"product_id": product},
                     cancel_on=["track:Order Completed",
                                (on("track", "Product Removed"), {"product_id": product})])
        return None
    return Proposal(action="cart-reminder", channels=("email",), payload=dict(ctx.timer.payload))


def test_an_exit_event_with_a_property_filter_cancels_only_its_own_timer() -> None:
    s = Scenario([cart])
    s.track("u1", "Product Added", properties={"product_id": "p1"})
    s.track("u1", "Product Added", properties={"product_id": "p2"})
    s.track("u1", "Product Removed", properties={"product_id": "p1"})
    s.track("u1", "Product Removed", properties={})  # no product: cancels nothing
    assert sorted(t.name for t in s.contact("u1").timers) == ["remind-p2"]
    s.track("u1", "Order Completed", properties={"order_id": "o1"})
    assert s.contact("u1").timers == ()


@rule("price-watch", triggers=[on("track", "Product Viewed")],
      values=[("track:Product Viewed", "price")])
def price_watch(ctx: Context) -> Proposal | None:
    last = ctx.last("track:Product Viewed", "price")
    peak = ctx.max_within("track:Product Viewed", "price", 7 * DAY)
    return Proposal(action="price", channels=("web",), payload={"last": last, "peak": peak})


def test_last_value_and_maximum_within_a_window() -> None:
    s = Scenario([price_watch])
    seen = []
    for price, days in ((30, 0), (50, 1), (20, 1), (25, 7)):
        s.advance(days=days)
        [a] = s.track("u1", "Product Viewed", properties={"price": price})
        seen.append((a.payload["last"], a.payload["peak"]))
    # the 50 of day 1 is out of the window on day 9; the 25 outlives the 20 before it
    assert seen == [(30, 30.0), (50, 50.0), (20, 50.0), (25, 25.0)]
    peaks = s.contact("u1").values["track:Product Viewed|price"].peaks
    assert [n for _, n in peaks] == [50.0, 25.0]  # the 30 and the 20: never a maximum again


def test_values_are_kept_only_for_declared_fields() -> None:
    s = Scenario([price_watch])
    s.track("u1", "Product Viewed", properties={"price": 9, "brand": "x"})
    s.track("u1", "Product Added", properties={"price": 9})
    assert list(s.contact("u1").values) == ["track:Product Viewed|price"]


@rule("undeclared", triggers=[on("page")])
def undeclared(ctx: Context) -> object:
    return ctx.last("track:Product Viewed", "price")


def test_reading_an_undeclared_field_is_an_error_that_says_how_to_declare_it() -> None:
    with pytest.raises(RuleFailed, match=re.escape(
            "declaring it: @rule(..., values=[('track:Product Viewed', 'price')])")):
        Scenario([undeclared]).page("u1", "/")
    s = Scenario([undeclared], rule_errors="record")  # in a running engine: recorded
    s.page("u1", "/")
    [error] = [d for d in s.contact("u1").decisions if d.outcome == "error"]
    assert "declaring it: @rule(..., values=[('track:Product Viewed', 'price')])" in error.reason


def test_peaks_are_bounded_late_values_keep_them_ordered_and_merges_join_them() -> None:
    held: Observed | None = None
    for i in range(MAX_PEAKS + 10):  # a falling price: every value is a peak
        held = observed(held, float(i), 100.0 - i)
    assert held is not None and len(held.peaks) == MAX_PEAKS
    held = observed(held, 15.5, 1000.0)  # a late event: a peak, not the latest value
    assert (held.last, held.at) == (100.0 - (MAX_PEAKS + 9), MAX_PEAKS + 9.0)
    assert held.peaks[0] == (15.5, 1000.0) and len(held.peaks) == MAX_PEAKS - 5
    assert held.max_within(1.0, held.at) == held.last
    other = observed(None, 100.0, 7)
    joined = merged(held, other)
    assert (joined.last, joined.max_within(1e9, 100.0)) == (7, 1000.0)
    assert joined.max_within(10.0, 100.0) == 7.0


PRICE_DROP = """
[[rule]]
id = "price-drop-seen"
triggers = ["track:Product Viewed"]
values = [["track:Product Viewed", "price"]]
when = "!purchased(event.properties.product_id, 30.0) && max_within('track:Product Viewed', 'price', 7.0) > last('track:Product Viewed', 'price')"

  [[rule.propose]]
  action = "cheaper-now"
  channels = ["web"]
  cooldown_days = 30
  cooldown_key = "event.properties.product_id"
"""


def test_declarative_rules_have_the_same_helpers(tmp_path: Path) -> None:
    (tmp_path / "drop.toml").write_text(PRICE_DROP)
    s = Scenario(tmp_path)
    view = {"product_id": "p1", "price": 30}
    assert s.track("u1", "Product Viewed", properties=view) == []
    [first] = s.track("u1", "Product Viewed", properties={**view, "price": 20})
    assert s.track("u1", "Product Viewed", properties={**view, "price": 10}) == []  # cooling
    [other] = s.track("u1", "Product Viewed", properties={"product_id": "p2", "price": 5})
    assert (first.action, other.action) == ("cheaper-now", "cheaper-now")
    assert [h.key for h in s.contact("u1").history] == ["p1", "p2"]
    s.track("u1", "Order Completed", properties={"products": [{"product_id": "p3"}]})
    assert s.track("u1", "Product Viewed", properties={"product_id": "p3", "price": 1}) == []


def test_a_declarative_cooldown_key_is_checked_at_load(tmp_path: Path) -> None:
    (tmp_path / "drop.toml").write_text(PRICE_DROP.replace(
        '"event.properties.product_id"\n', '"item.product_id"\n'))
    with pytest.raises(RuleError, match=r"drop.toml: rule 'price-drop-seen' "
                       r"\(\$\.rule\[0\]\.propose\[0\]\.cooldown_key\): unknown variable"):
        RuleSet.load(tmp_path)
