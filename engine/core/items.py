"""The item step: catalogue reference state, the index of interested contacts, and fan-out.

Keyed by item id, like identity by identifier and contacts by contact id. Two messages reach it:

- `Interested`, from the contact step, when a contact's event names a product (viewed, carted,
  wishlisted): the item remembers that contact's latest time of that kind of interest, for the
  `MAX_INTERESTED` newest contacts; interests older than `INTEREST_TTL` are swept before each
  fan-out (and whenever the cap is reached), not on every interest, which costs a pass over the
  whole index;
- `Catalogued`, from the catalogue input: the item's new price and availability. Compared with
  the previous ones it may be a change (`price_drop`, `back_in_stock`); each change is sent as
  an event of kind `catalogue` to every interested contact, through the contact step, where the
  rules on `on("catalogue", …)` run with that contact's state and the policy applies as usual.

The first record of an item only sets its reference; an older record than the one kept (a late
one) changes nothing, and a repeated one finds no change. Pure: the record in, the record and
the emits out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.core.identity import Emit, ToContacts, ToItems
from engine.core.policy import DAY
from engine.model.catalogue import CatalogueItem, InterestKind, ItemRecord
from engine.model.events import Event
from engine.model.messages import Deliver, Interested, ItemMessage

__all__ = ["INTEREST_EVENTS", "INTEREST_TTL", "MAX_INTERESTED", "ItemStep", "interests", "step"]

MAX_INTERESTED = 1000  # contacts kept per item, the newest: what one change can fan out to
INTEREST_TTL = 60 * DAY  # an interest older than this (at the item's latest time) is dropped
INTEREST_EVENTS: dict[str, InterestKind] = {
    "Product Viewed": "viewed",
    "Product Added": "carted",
    "Product Added to Wishlist": "wishlisted",
}


@dataclass(slots=True)
class ItemStep:
    record: ItemRecord | None
    emits: list[Emit] = field(default_factory=list)
    changed: bool = False


def interests(contact_id: str, event: Event) -> list[Emit]:
    """What a contact's event tells the items it names (none for most events)."""
    kind = INTEREST_EVENTS.get(event.name) if event.kind == "track" else None
    item = event.properties.get("product_id") if kind is not None else None
    if kind is None or not isinstance(item, str) or not item:
        return []
    return [ToItems(item, Interested(contact_id=contact_id, kind=kind, time=event.time))]


def step(record: ItemRecord | None, key: str, msg: ItemMessage) -> ItemStep:
    """Apply one item message to the record stored under `key`."""
    out = ItemStep(record)
    current = record or ItemRecord()
    if isinstance(msg, Interested):
        seen = current.interested.get(msg.contact_id)
        if (seen or {}).get(msg.kind, 0.0) < msg.time:  # an unchanged record stays as it was
            current.interested.setdefault(msg.contact_id, {})[msg.kind] = msg.time
            if len(current.interested) > MAX_INTERESTED:  # the age sweep waits for a change:
                _bound(current, max(msg.time, current.time))  # a fan-out runs it first
            out.record, out.changed = current, True
        return out
    if msg.time < current.time:
        return out  # a late record: the reference stays the newer one
    changes = _changes(current, msg.item) if current.records else []
    current.records += 1
    current.time, current.price = msg.time, msg.item.price
    current.currency, current.availability = msg.item.currency, msg.item.availability
    _bound(current, msg.time)
    out.record, out.changed = current, True
    for name, props in changes:
        event_id = f"catalogue:{key}:{current.records}:{name}"
        for contact, seen in sorted(current.interested.items()):
            event = Event(event_id=event_id, source="catalogue", kind="catalogue", name=name,
                          time=msg.time, properties={**props, "interests": dict(seen)})
            out.emits.append(ToContacts(contact, Deliver(event=event, via="")))
    return out


def _changes(before: ItemRecord, item: CatalogueItem) -> list[tuple[str, dict[str, Any]]]:
    """The changes a rule can trigger on, each with what its event carries."""
    props: dict[str, Any] = {
        "item_id": item.item_id, "price": item.price, "old_price": before.price,
        "currency": item.currency, "availability": item.availability,
        "old_availability": before.availability, "attributes": item.attributes,
    }
    found: list[tuple[str, dict[str, Any]]] = []
    old, new = before.price, item.price
    if old and new is not None and new < old and before.currency == item.currency:
        found.append(("price_drop", {**props, "drop_pct": round((old - new) / old * 100, 2)}))
    if item.availability == "in_stock" and before.availability not in (None, "in_stock"):
        found.append(("back_in_stock", props))
    return found


def _bound(record: ItemRecord, now: float) -> None:
    """Drop interests older than the TTL, then all but the newest `MAX_INTERESTED` contacts."""
    horizon = now - INTEREST_TTL
    people = record.interested
    for contact in [c for c, seen in people.items() if max(seen.values()) < horizon]:
        del people[contact]
    for kinds in people.values():
        for kind in [k for k, t in kinds.items() if t < horizon]:
            del kinds[kind]
    if len(people) > MAX_INTERESTED:
        newest = sorted(people, key=lambda c: (max(people[c].values()), c), reverse=True)
        record.interested = {c: people[c] for c in newest[:MAX_INTERESTED]}
