"""Messages between the pipeline's keyed steps, identical in both runtimes.

The Kafka runtime carries them on internal topics; the embedded runtime on an in-process queue.
Because both runtimes move the same messages through the same pure steps, they decide the same
actions. Encoded as tagged msgpack so a topic can hold several kinds.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.model.catalogue import CatalogueItem, InterestKind
from engine.model.events import Event
from engine.model.explained import Refusal


class Resolve(msgspec.Struct, tag="resolve", frozen=True):
    """An event looking for its contact, keyed by `candidates[index]` on the identity topic."""

    event: Event
    candidates: tuple[str, ...]
    index: int = 0


class Claim(msgspec.Struct, tag="claim", frozen=True):
    """An event links `identifier` to `contact_id` (keyed by identifier); `user` is the
    authenticated event's userId identifier, empty for an unverified event's first link."""

    identifier: str
    contact_id: str
    user: str = ""


class Relink(msgspec.Struct, tag="relink", frozen=True):
    """Path compression: `identifier` still names merged `stale`, point it at `contact_id`."""

    identifier: str
    stale: str
    contact_id: str


class Deliver(msgspec.Struct, tag="deliver", frozen=True):
    """An event for the contact it is keyed by on the contacts topic."""

    event: Event
    via: str
    hops: int = 0


class FireTimer(msgspec.Struct, tag="timer", frozen=True):
    """A due timer, sent through the contact's keyed path so it is ordered with its events."""

    timer_id: str
    due: float


class Unite(msgspec.Struct, tag="unite", frozen=True):
    """`user` claimed `identifier`, which names contact `contact_id` (the key): it moves into
    the claimant's contact `other` unless it holds another userId (then the merge is refused)."""

    contact_id: str
    other: str
    hops: int = 0
    identifier: str = ""
    user: str = ""


class MergeIn(msgspec.Struct, tag="merge_in", frozen=True):
    """The whole state of a contact that was merged into the keyed one."""

    source: str
    state: bytes
    hops: int = 0


class Refused(msgspec.Struct, tag="refused", frozen=True):
    """A merge the keyed contact's login asked for was refused: kept so explain shows it."""

    refusal: Refusal
    hops: int = 0


class Erase(msgspec.Struct, tag="erase", frozen=True):
    """Right to be forgotten, keyed by an identifier: forget the contact it names."""

    identifier: str


class Unlink(msgspec.Struct, tag="unlink", frozen=True):
    """Delete the identity record of an identifier a contact let go (forgotten, or refused
    beyond a limit), if it still names that contact: a device that moved on stays linked."""

    identifier: str
    contact_id: str | None = None  # None: whoever it names


class Forget(msgspec.Struct, tag="forget", frozen=True):
    """Right to be forgotten, keyed by contact id: erase its state and identity records."""

    hops: int = 0


class Catalogued(msgspec.Struct, tag="catalogued", frozen=True):
    """A catalogue record for the item it is keyed by on the items topic; `time` its own."""

    item: CatalogueItem
    time: float


class Interested(msgspec.Struct, tag="interested", frozen=True):
    """A contact's event named the item this is keyed by: viewed, carted or wishlisted it."""

    contact_id: str
    kind: InterestKind
    time: float


IdentityMessage = Resolve | Claim | Relink | Erase | Unlink
ContactMessage = Deliver | FireTimer | Unite | MergeIn | Refused | Forget
ItemMessage = Catalogued | Interested

_identity_encoder = msgspec.msgpack.Encoder()
_identity_decoder = msgspec.msgpack.Decoder(IdentityMessage)
_contact_decoder = msgspec.msgpack.Decoder(ContactMessage)
_item_decoder = msgspec.msgpack.Decoder(ItemMessage)


def encode(msg: Any) -> bytes:
    return _identity_encoder.encode(msg)


def decode_identity(raw: bytes) -> IdentityMessage:
    msg: IdentityMessage = _identity_decoder.decode(raw)
    return msg


def decode_contact(raw: bytes) -> ContactMessage:
    msg: ContactMessage = _contact_decoder.decode(raw)
    return msg


def decode_item(raw: bytes) -> ItemMessage:
    msg: ItemMessage = _item_decoder.decode(raw)
    return msg
