"""Identity resolution: one contact per person across anonymous ids, user ids, emails and handles.

The identity table is keyed by identifier (`user:42`, `email:ada@example.com`, `anon:…`,
`handle:twitter:ada`) and holds the contact id it names. This step is pure: given the record
for the message's key it returns the new record and the messages to emit.

Linking rules: only authenticated events (clickstream calls with a userId) link identifiers,
and only they can cause two existing contacts to be merged. An `alias` call is one of them: its
`previousId` is linked as the device identifier `anon:<previousId>`, so it can bring an
anonymous history in, and can never make two userIds one. Unverified events (email, social)
look their identifiers up in priority order and, when none is known, start a contact of their own.

A userId is a person: its contact never merges with another userId's. When a login claims an
identifier another contact holds, the identity policy (`[identity]`) says who keeps it: a device
(`anon`) follows the newest login for what comes next, an email or a handle stays with its
holder. The holder's contact step then decides the merge (`engine/core/linking.py`): a contact
with no userId of its own moves into the claimant's; one with another userId is never merged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import msgspec

from engine.core.policy import IdentityPolicy
from engine.model.events import Event, social_handle
from engine.model.messages import (
    Claim,
    ContactMessage,
    Deliver,
    Erase,
    Forget,
    IdentityMessage,
    ItemMessage,
    Relink,
    Resolve,
    Unite,
    Unlink,
)


class ToIdentity(msgspec.Struct, frozen=True, gc=False):  # never in a cycle: no GC tracking
    """A message for the identity step, keyed by the identifier whose record it concerns."""

    table: ClassVar[Literal["identity"]] = "identity"
    key: str
    msg: IdentityMessage


class ToContacts(msgspec.Struct, frozen=True, gc=False):
    """A message for the contact step, keyed by contact id."""

    table: ClassVar[Literal["contacts"]] = "contacts"
    key: str
    msg: ContactMessage


class ToItems(msgspec.Struct, frozen=True, gc=False):
    """A message for the item step, keyed by item id (`engine/core/items.py`)."""

    table: ClassVar[Literal["items"]] = "items"
    key: str
    msg: ItemMessage


Emit = ToIdentity | ToContacts | ToItems  # what a step hands to the next keyed step


def contact_id_for(identifier: str, key: str = "") -> str:
    """A new contact's id, derived from its first identifier so both runtimes agree on it, and
    keyed with the identity policy's secret so that nobody can compute it from an identifier."""
    return "c" + hashlib.blake2b(identifier.encode(), digest_size=10, key=key.encode()).hexdigest()


def identifiers(event: Event) -> tuple[str, ...]:
    """The event's identifiers, strongest first: user id, email, social handles, anonymous id."""
    ids: list[str] = []
    if event.user_id:
        ids.append(f"user:{event.user_id}")
    if event.email:
        ids.append(f"email:{event.email}")
    if event.handle:
        ids.append(f"handle:{event.handle}")
    if event.kind == "identify":
        handles = event.traits.get("social_handles")
        if isinstance(handles, dict):
            for network, handle in handles.items():
                if isinstance(network, str) and isinstance(handle, str) and handle:
                    ids.append(f"handle:{social_handle(network, handle)}")
    if event.anonymous_id:
        ids.append(f"anon:{event.anonymous_id}")
    if event.previous_id:  # an alias: the earlier id is a device the user had, never a user
        ids.append(f"anon:{event.previous_id}")
    # Most events carry one identifier (an anonymous page view): no duplicates to drop.
    return tuple(dict.fromkeys(ids)) if len(ids) > 1 else tuple(ids)


def route(event: Event) -> Emit:
    """The first hop of an event: to the identity partition of its strongest identifier, or
    straight to its contact when the sender knows it (an action's outcome)."""
    if event.contact_id is not None:
        return ToContacts(event.contact_id, Deliver(event=event, via=""))
    ids = identifiers(event)
    return ToIdentity(ids[0], Resolve(event=event, candidates=ids))


@dataclass(slots=True)
class IdentityStep:
    record: str | None
    emits: list[Emit] = field(default_factory=list)
    changed: bool = False
    deleted: bool = False  # the record is to be removed (a forgotten contact's identifier)


def kind_of(identifier: str) -> str:
    """`user`, `email`, `handle` or `anon`: what an identifier says about who it names."""
    return identifier.partition(":")[0]


def step(
    record: str | None, key: str, msg: IdentityMessage, policy: IdentityPolicy
) -> IdentityStep:
    """Apply one identity message to the record stored under `key`."""
    out = IdentityStep(record)
    if isinstance(msg, Resolve):
        _resolve(out, key, msg, policy.contact_id_key)
    elif isinstance(msg, Claim):
        _claim(out, msg, policy)
    elif isinstance(msg, Erase):
        if record is not None:
            out.record, out.deleted = None, True
            out.emits.append(ToContacts(record, Forget()))
    elif isinstance(msg, Unlink):
        if record is not None and msg.contact_id in (None, record):
            out.record, out.deleted = None, True
    elif record == msg.stale:  # Relink
        out.record, out.changed = msg.contact_id, True
    return out


def _claim(out: IdentityStep, msg: Claim, policy: IdentityPolicy) -> None:
    """Link an identifier; when it names another contact, that contact decides the merge.

    The record moves at once when the newest claimant wins (a shared browser's next events go
    to whoever logged in last, even if the merge is then refused); otherwise it stays until the
    holder has merged into the claimant. An unverified claim never takes a record over.
    """
    record, contact = out.record, msg.contact_id
    if record == contact:
        return
    if record is None or (msg.user and policy.newest_wins(kind_of(msg.identifier))):
        out.record, out.changed = contact, True
    if record is not None and msg.user:
        unite = Unite(contact_id=record, other=contact, identifier=msg.identifier, user=msg.user)
        out.emits.append(ToContacts(record, unite))


def erasure(who: str) -> Emit:
    """The first hop of a right-to-be-forgotten request: a contact id (`c…`) or an identifier."""
    if ":" in who:
        return ToIdentity(who, Erase(identifier=who))
    return ToContacts(who, Forget())


def _resolve(out: IdentityStep, key: str, msg: Resolve, contact_key: str) -> None:
    event, ids = msg.event, msg.candidates
    if out.record is not None:
        contact = out.record
    elif event.authenticated or msg.index + 1 >= len(ids):
        # Authenticated: the user id names the contact, the rest get linked by claims below.
        # Unverified and nothing known: start a contact from the strongest identifier.
        contact = contact_id_for(ids[0], contact_key)
        if key == ids[0]:
            out.record, out.changed = contact, True
        else:
            claim = Claim(identifier=ids[0], contact_id=contact)
            out.emits.append(ToIdentity(ids[0], claim))
    else:
        nxt = msg.index + 1
        out.emits.append(ToIdentity(ids[nxt], Resolve(event=event, candidates=ids, index=nxt)))
        return
    out.emits.append(ToContacts(contact, Deliver(event=event, via=key)))
    if event.authenticated:
        for other in ids[1:]:
            claim = Claim(identifier=other, contact_id=contact, user=ids[0])
            out.emits.append(ToIdentity(other, claim))


def relink(identifier: str, stale: str, contact_id: str) -> Emit:
    msg = Relink(identifier=identifier, stale=stale, contact_id=contact_id)
    return ToIdentity(identifier, msg)
