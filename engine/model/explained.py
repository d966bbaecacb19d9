"""What a contact's state keeps so `kairos explain` can say why: each candidate's fate, and
each merge or identifier the identity rules refused."""

from __future__ import annotations

import msgspec

__all__ = ["DecisionRecord", "Refusal"]


class DecisionRecord(msgspec.Struct, gc=False, omit_defaults=True, frozen=True):
    """One candidate's fate, kept for `kairos explain`."""

    at: float
    trigger_event_id: str
    rule_id: str
    action: str
    outcome: str
    reason: str
    channel: str | None = None
    action_id: str | None = None
    shadow: bool = False  # a shadow rule's candidate: what it would have done, never done
    fallback_from: str | None = None  # offered after the action failed for good on this channel
    cooldown_key: str | None = None  # the proposal's: its cool-down held per (action, key)


class Refusal(msgspec.Struct, gc=False, omit_defaults=True, frozen=True):
    """A merge or identifier the identity rules refused, kept for `kairos explain`."""

    at: float
    identifier: str
    kind: str  # the identifier's kind: user, email, handle, anon
    reason: str
    other: str | None = None  # the contact it would have been merged with
