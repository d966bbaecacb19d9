"""Permission and reachability: may we solicit this contact on a channel, and at which address.

Consent answers are kept per channel (`email`) and per subscription group within a channel
(`email/newsletter`), each stamped with the event time that gave it; the newest answer for a
key wins, so a late-arriving old `identify` never re-grants what a newer unsubscribe withdrew.
A channel-wide withdrawal (a global unsubscribe) silences every group of the channel until a
newer channel-wide grant; a group's own answer decides that group otherwise.

Addresses are learned from the contact's own events only (its `identify` traits, its device's
push token and type, the provider events about its mailbox), so an action's `recipient` is
always the address of the contact the action is for. docs/policy.md has the whole model.
"""

from __future__ import annotations

from typing import Any

from engine.core.policy import Policy
from engine.model.events import Event
from engine.model.state import Address, Consent, ContactState

# Channels that cannot deliver without an address of the contact's; web and crm address the
# contact by id.
ADDRESSED = ("email", "sms", "push", "print")
# identify traits that carry an address, per channel (email comes from `Event.email`).
ADDRESS_TRAITS = {"sms": ("phone", "mobile"), "push": ("push_token", "device_token"),
                  "print": ("address",)}
POSTAL_FIELDS = ("street", "postal_code", "postalCode", "city", "state", "country")
HARD_BOUNCE = "hard bounce"
SPAM_REPORT = "spam report"
MARKETING_ONLY = "/marketing"  # suffix of a suppression that blocks marketing only
PREFERENCE_EVENTS = ("Preferences Updated",)


def consent_key(channel: str, group: str | None) -> str:
    return f"{channel}/{group}" if group else channel


# --- learning --------------------------------------------------------------------------------


def learn_consent(state: ContactState, event: Event, policy: Policy) -> None:
    """Every consent answer the event carries, each kept only if newer than the one it meets."""
    t, eid = event.time, event.event_id
    if event.kind == "email":
        group = email_group(event, policy)
        if event.name == "unsubscribe" or (event.name == "group_unsubscribe" and not group):
            answer(state, "email", Consent(False, t, f"email:{event.name}", eid))
        elif group and event.name in ("group_unsubscribe", "group_resubscribe"):
            granted = event.name == "group_resubscribe"
            given = Consent(granted, t, f"email:{event.name}", eid)
            answer(state, consent_key("email", group), given)
        return
    for category, granted in (event.consent or {}).items():
        for key in policy.consent_categories.get(category, ()):
            answer(state, key, Consent(granted, t, f"segment:{category}", eid))
    answers: Any = None
    if event.kind == "identify":
        answers = event.traits.get("consent")
    elif event.name in PREFERENCE_EVENTS:
        answers = event.properties.get("consent")
    if isinstance(answers, dict):
        source = "traits" if event.kind == "identify" else "preference-centre"
        for key, granted in answers.items():
            if isinstance(key, str) and policy.is_consent_key(key) and isinstance(granted, bool):
                answer(state, key, Consent(granted, t, source, eid))


def answer(state: ContactState, key: str, given: Consent) -> None:
    """Newest by event time wins; at the same instant a withdrawal beats a grant."""
    held = state.consent.get(key)
    if held is None or given.at > held.at or (given.at == held.at and not given.granted):
        state.consent[key] = given


def email_group(event: Event, policy: Policy) -> str | None:
    """The policy's name for the event's `asm_group_id`, or the id itself when unnamed."""
    gid = event.properties.get("asm_group_id")
    if not isinstance(gid, int):
        return None
    return next((name for name, i in policy.email_groups.items() if i == gid), str(gid))


ADDRESSES_SCHEMA = 2  # states from before `addresses` existed have schema 1


def migrate_addresses(state: ContactState) -> None:
    """A state written before addresses were kept gets them from what it already knew (its
    first email identifier and its address traits, as actions were addressed then), once."""
    if state.schema >= ADDRESSES_SCHEMA:
        return
    state.schema = ADDRESSES_SCHEMA
    email = next((i[6:] for i in state.identifiers if i.startswith("email:")), None)
    if email:
        state.addresses.setdefault("email", Address(email, 0.0))  # when: unknown, so oldest
    for channel, traits in ADDRESS_TRAITS.items():
        value = next((v for v in map(_address, map(state.traits.get, traits)) if v), None)
        if value:
            state.addresses.setdefault(channel, Address(value, 0.0))


def learn_addresses(state: ContactState, event: Event) -> None:
    """An identify sets (or, with an empty value, clears) the contact's addresses, unless a
    newer event already gave one or the email is not among the contact's identifiers; a
    provider event gives the mailbox it is about only to a contact that has none yet."""
    t, token = event.time, event.device_token
    if token:
        _address_at(state, "push", token, t, event.device_type)
    if event.kind == "email" and event.email:
        state.addresses.setdefault("email", Address(event.email, t))
    if event.kind != "identify":
        return
    if event.email and f"email:{event.email}" in state.identifiers:
        # (an email the identity limits refused is no address of this contact's: its bounces,
        # unsubscribes and opens would reach another contact)
        before = state.addresses.get("email")
        _address_at(state, "email", event.email, t)
        moved = before is not None and state.addresses["email"].value != before.value
        if moved and state.suppressed.get("email") == HARD_BOUNCE:  # the old mailbox's bounce
            del state.suppressed["email"]
    for channel, traits in ADDRESS_TRAITS.items():
        trait = next((tr for tr in traits if tr in event.traits), None)
        if trait is not None and not (channel == "push" and token):
            _address_at(state, channel, _address(event.traits[trait]), t)


def _address_at(
    state: ContactState, channel: str, value: str | None, t: float, device: str | None = None
) -> None:
    """The newest by event time wins; None (an emptied trait) removes the address."""
    held = state.addresses.get(channel)
    if held is not None and held.at > t:
        return
    if value:
        state.addresses[channel] = Address(value, t, device)
    else:
        state.addresses.pop(channel, None)


def _address(value: Any) -> str | None:
    """A string as given; a postal address object (Segment's `address` trait) on one line."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        parts = [str(value[f]).strip() for f in POSTAL_FIELDS if value.get(f)]
        return ", ".join(p for p in parts if p) or None
    return None


def learn_suppressions(state: ContactState, event: Event) -> None:
    """A hard bounce of the contact's mailbox blocks every email; a spam report blocks
    marketing email. Nothing lifts a spam report; a new address lifts a hard bounce."""
    if event.kind != "email":
        return
    reason = (event.reason or "").lower()
    if event.name == "spamreport" or (event.name == "dropped" and "spam" in reason):
        state.suppressed["email" + MARKETING_ONLY] = SPAM_REPORT
        return
    mailbox = state.addresses.get("email")
    if hard_bounce(event) and event.email in (None, mailbox.value if mailbox else None):
        state.suppressed["email"] = HARD_BOUNCE


def hard_bounce(event: Event) -> bool:
    """The provider says the mailbox does not exist (a bounce not merely blocked, or a drop
    for an address that bounced before): it never will."""
    if event.kind != "email":
        return False
    return (event.name == "bounce" and event.properties.get("type") != "blocked") or (
        event.name == "dropped" and "bounced" in (event.reason or "").lower())


# --- reading -----------------------------------------------------------------------------


def recipient(state: ContactState, channel: str) -> str | None:
    """Where a connector delivers on `channel`: the contact's own address, None for web and crm."""
    address = state.addresses.get(channel) if channel in ADDRESSED else None
    return address.value if address else None


def undeliverable(state: ContactState, channel: str, marketing: bool) -> str:
    """Why nothing can go out on the channel at all, whatever the consent: the reason code."""
    if channel in state.suppressed or (marketing and channel + MARKETING_ONLY in state.suppressed):
        return "hard_suppressed"
    if channel in ADDRESSED and channel not in state.addresses:
        return "unreachable"
    return ""


def permits(state: ContactState, channel: str, group: str | None, policy: Policy) -> bool:
    """Marketing consent on the channel for the group: a channel-wide withdrawal covers every
    group; a group's own answer decides it; then a channel-wide grant; then the defaults."""
    whole = state.consent.get(channel)
    if whole is not None and not whole.granted:
        return False
    part = state.consent.get(consent_key(channel, group)) if group else None
    if part is not None:
        return part.granted
    if whole is not None:
        return True
    cp = policy.channel(channel)
    return cp.consent_default or (cp.soft_opt_in and bool(state.purchases))
