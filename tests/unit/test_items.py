"""The item step: reference state, the bounded index of interested contacts, fan-out."""

from engine.core import items
from engine.core.identity import ToContacts
from engine.model.catalogue import CatalogueItem, ItemRecord
from engine.model.events import Event
from engine.model.messages import Catalogued, Deliver, Interested

T0 = 1_790_000_000.0


def record(item_id: str = "sku-1", at: float = T0, **fields: object) -> Catalogued:
    return Catalogued(item=CatalogueItem(item_id=item_id, timestamp=at, **fields), time=at)


def run(*msgs: Catalogued | Interested) -> tuple[ItemRecord | None, list[Deliver]]:
    state: ItemRecord | None = None
    delivered: list[Deliver] = []
    for msg in msgs:
        out = items.step(state, "sku-1", msg)
        state = out.record if out.changed else state
        delivered = [e.msg for e in out.emits if isinstance(e, ToContacts)
                     and isinstance(e.msg, Deliver)]
    return state, delivered


def test_the_first_record_sets_the_reference_a_drop_then_reaches_each_interested_contact() -> None:
    _, first = run(Interested(contact_id="c1", kind="viewed", time=T0), record(price=100.0))
    assert first == []
    _, out = run(Interested(contact_id="c1", kind="viewed", time=T0),
                 Interested(contact_id="c2", kind="carted", time=T0 + 1),
                 record(price=100.0, currency="EUR"),
                 record(at=T0 + 5, price=80.0, currency="EUR"))
    assert [(d.event.kind, d.event.name, d.event.properties["drop_pct"],
             d.event.properties["interests"]) for d in out] == [
        ("catalogue", "price_drop", 20.0, {"viewed": T0}),
        ("catalogue", "price_drop", 20.0, {"carted": T0 + 1})]
    assert out[0].event.event_id == out[1].event.event_id == "catalogue:sku-1:2:price_drop"


def test_a_late_record_or_another_currency_is_no_change() -> None:
    state, out = run(Interested(contact_id="c1", kind="viewed", time=T0),
                     record(at=T0 + 10, price=100.0, currency="EUR"),
                     record(at=T0 + 5, price=10.0, currency="EUR"))
    assert out == [] and state is not None and state.price == 100.0
    _, out = run(Interested(contact_id="c1", kind="viewed", time=T0),
                 record(price=100.0, currency="EUR"), record(price=50.0, currency="USD"))
    assert out == []


def test_back_in_stock_only_from_another_availability() -> None:
    start = (Interested(contact_id="c1", kind="wishlisted", time=T0),)
    _, out = run(*start, record(availability="out_of_stock"), record(availability="in_stock"))
    assert [d.event.name for d in out] == ["back_in_stock"]
    _, out = run(*start, record(availability="in_stock"), record(availability="in_stock"))
    assert out == []


def test_the_index_keeps_the_newest_contacts_and_drops_old_interests() -> None:
    n = items.MAX_INTERESTED + 5
    msgs = [Interested(contact_id=f"c{i:05d}", kind="viewed", time=T0 + i) for i in range(n)]
    state, _ = run(*msgs)
    assert state is not None and len(state.interested) == items.MAX_INTERESTED
    assert "c00004" not in state.interested and "c00005" in state.interested
    late = T0 + n + items.INTEREST_TTL
    state, _ = run(*msgs, Interested(contact_id="new", kind="carted", time=late))
    assert state is not None and list(state.interested) == ["new"]


def test_only_product_events_with_an_id_name_an_interest() -> None:
    def event(name: str, **props: object) -> Event:
        return Event(event_id="e", source="clickstream", kind="track", name=name, time=T0,
                     properties=props)

    [emit] = items.interests("c1", event("Product Added", product_id="sku-1"))
    assert (emit.key, emit.msg) == ("sku-1", Interested(contact_id="c1", kind="carted", time=T0))
    assert items.interests("c1", event("Product Added")) == []
    assert items.interests("c1", event("Order Completed", product_id="sku-1")) == []
