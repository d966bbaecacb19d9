"""The contact side of identity resolution: which identifiers a contact keeps, and merges.

The identity step (`engine/core/identity.py`) only sees one identifier's record; whether two
contacts may become one needs the state of the contact an identifier names, so that contact's
step decides, here, with the identity policy:

- a contact holds at most `[identity] limits` identifiers of each kind (handles: per network);
  beyond that the newcomer is refused, or the oldest dropped where the newest wins;
- a contact asked to merge into a login's contact moves (its whole state, once) only when it
  holds no userId of its own, or that same one. Another userId means another person: the merge
  is refused, the history stays where it happened. User contacts therefore never move, so
  merges cannot form a cycle whatever order they race in.

Every refusal is kept on the contact (`ContactState.refused`, for `kairos explain`; a refused
merge on the login's contact too) and returned once, by the refusing step, so the pipeline
counts it (`kairos_identity_merges_refused_total{kind}`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.core.identity import Emit, ToContacts, ToIdentity, kind_of, relink
from engine.core.policy import IdentityPolicy
from engine.model import state as state_codec
from engine.model.explained import Refusal
from engine.model.messages import MergeIn, Refused, Unite, Unlink
from engine.model.state import MAX_IDENTIFIERS, ContactState


@dataclass(slots=True)
class Links:
    """What linking decided beyond the state: messages to send and the kinds refused."""

    emits: list[Emit] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def users(state: ContactState) -> list[str]:
    return [i for i in state.identifiers if i.startswith("user:")]


def _slot(identifier: str) -> str:
    """What a limit counts: the kind, and for handles the network too."""
    kind, _, rest = identifier.partition(":")
    return f"handle:{rest.partition(':')[0]}" if kind == "handle" else kind


def admit(
    state: ContactState, idents: Iterable[str], now: float, policy: IdentityPolicy, links: Links
) -> None:
    """Add identifiers to the contact within the policy's limits."""
    for ident in idents:
        if ident in state.identifiers:
            continue
        kind, slot = kind_of(ident), _slot(ident)
        limit = policy.limit(kind)
        held = [i for i in state.identifiers if _slot(i) == slot]
        if limit is not None and len(held) >= limit:
            dropped = held[0] if policy.newest_wins(kind) else ident
            _refuse(state, links, Refusal(
                at=now, identifier=dropped, kind=kind,
                reason=f"beyond the limit of {limit} {slot} per contact"))
            _drop(state, dropped, links)
            if dropped == ident:
                continue
        if len(state.identifiers) >= MAX_IDENTIFIERS:  # make room: a device first, never a user
            _drop(state, _weakest(state), links)
        state.add_identifier(ident)


def _weakest(state: ContactState) -> str:
    anon = [i for i in state.identifiers if i.startswith("anon:")]
    return anon[0] if anon else next(i for i in state.identifiers if not i.startswith("user:"))


def _drop(state: ContactState, identifier: str, links: Links) -> None:
    """The contact lets an identifier go (or never takes it); its record is removed if it
    names the contact."""
    if identifier in state.identifiers:
        state.identifiers = tuple(i for i in state.identifiers if i != identifier)
    links.emits.append(ToIdentity(identifier, Unlink(identifier=identifier,
                                                     contact_id=state.contact_id)))


def unite(state: ContactState, msg: Unite, now: float, links: Links) -> ContactState:
    """A login (`msg.user`) claimed `msg.identifier`, which names this contact: move into the
    login's contact `msg.other`, or refuse when this contact is another person."""
    me, other = state.contact_id, msg.other
    theirs = [u for u in users(state) if u != msg.user]
    if theirs:
        why = f"{msg.user or 'an unverified claim'} would be merged with {theirs[0]}"
        kind = kind_of(msg.identifier)
        _refuse(state, links, Refusal(at=now, identifier=msg.identifier, kind=kind, other=other,
                                      reason=why))
        told = Refusal(at=now, identifier=msg.identifier, kind=kind, other=me, reason=why)
        links.emits.append(ToContacts(other, Refused(refusal=told)))  # the login's side
        return state
    links.emits.append(ToContacts(other, MergeIn(source=me, state=state_codec.encode(state))))
    links.emits.extend(relink(i, me, other) for i in state.identifiers)
    return ContactState(contact_id=me, merged_into=other)


def _refuse(state: ContactState, links: Links, refusal: Refusal) -> None:
    state.record_refusal(refusal)
    links.refused.append(refusal.kind)
