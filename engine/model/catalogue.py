"""The catalogue input and the reference state kept per item.

A catalogue record says what an item costs and whether it can be bought, now. It names no
contact: it goes to the item step (keyed by item id), which keeps the item's previous price and
availability, so a change can be told apart from a repeat, and the contacts who showed an
interest in the item lately, so a change can be fanned out to them (`engine/core/items.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

import msgspec

from engine.model.events import check_ids, check_time, epoch_of, strictly

__all__ = ["AVAILABILITY", "INTEREST_KINDS", "Availability", "CatalogueItem", "InterestKind",
           "ItemRecord", "decode_item", "decode_record", "encode_record"]

Availability = Literal["in_stock", "out_of_stock", "preorder", "backorder", "discontinued"]
AVAILABILITY: tuple[str, ...] = get_args(Availability)
InterestKind = Literal["viewed", "carted", "wishlisted"]
INTEREST_KINDS: tuple[str, ...] = get_args(InterestKind)


class CatalogueItem(msgspec.Struct, kw_only=True):
    """One item as the catalogue has it now (the wire shape of `kairos-catalogue`)."""

    item_id: str
    price: float | None = None
    currency: str | None = None
    availability: Availability | None = None
    attributes: dict[str, Any] = {}
    timestamp: datetime | int | float

    def __post_init__(self) -> None:
        if not self.item_id:
            raise ValueError("item_id must not be empty - at `$.item_id`")
        if self.price is not None and not 0 <= self.price < float("inf"):
            raise ValueError("price must be a finite amount, not negative - at `$.price`")


class ItemRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The item step's state: the last catalogue values and who was interested, when.

    `interested` maps a contact id to the last time of each kind of interest it showed.
    """

    records: int = 0  # catalogue records applied: numbers each change's event
    time: float = 0.0  # of the catalogue record the values below come from
    price: float | None = None
    currency: str | None = None
    availability: str | None = None
    interested: dict[str, dict[str, float]] = {}


_item_decoder = msgspec.json.Decoder(CatalogueItem)
_record_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(ItemRecord)


def decode_item(raw: bytes) -> tuple[CatalogueItem, float]:
    """Bytes of one catalogue record to the item and its time, or `DecodeError` saying why not."""
    item = strictly(lambda: _item_decoder.decode(raw), raw)
    check_ids(item_id=item.item_id)
    return item, check_time(epoch_of(item.timestamp), "$.timestamp")


def encode_record(record: ItemRecord) -> bytes:
    return _record_encoder.encode(record)


def decode_record(raw: bytes) -> ItemRecord:
    record: ItemRecord = _record_decoder.decode(raw)
    return record
