"""What was sent to a contact and what came of it: the history entries caps, cool-downs and
the propensity estimate read, and what a fallback needs to offer the next channel."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["ENGAGED", "FAILED", "IGNORED", "MAX_FALLBACKS", "Contacted", "Fallback", "Outcomes"]

MAX_FALLBACKS = 16


class Contacted(msgspec.Struct, gc=False, array_like=True, frozen=True):
    """One action sent to the contact: what caps, cool-downs and fatigue look at."""

    at: float
    channel: str
    action: str
    rule_id: str
    action_id: str
    marketing: bool = True  # transactional and mandatory actions do not count toward caps
    control: bool = False  # held out: decided but not delivered, so not counted either
    converted: bool = False  # a purchase within the conversion window followed it (counted once)
    # What came of it, once known: engaged (opened, clicked, bought), failed (bounced, failed:
    # never reached the contact, so no cap or cool-down counts it) or ignored (nothing within
    # the policy's window); "" until then. Each action is judged once (engine/core/observe.py).
    fate: str = ""
    key: str = ""  # the proposal's cooldown_key: its cool-down holds per (action, key)


ENGAGED, FAILED, IGNORED = "engaged", "failed", "ignored"


class Fallback(msgspec.Struct, gc=False, array_like=True, frozen=True):
    """An action sent on one of several channels its rule allowed: what a permanent failure
    needs to offer the next one (engine/core/fallback.py)."""

    action_id: str
    origin: str  # the first action of the chain: every fallback's id derives from it
    channel: str  # where this one went out
    rule_id: str
    kept: dict[str, Any]  # the proposal with the channels after this one (arbitration.keep)


class Outcomes(msgspec.Struct, gc=False, array_like=True):
    """What happened to one action on one channel for this contact: the propensity evidence."""

    sent: int = 0
    positive: int = 0  # opened, clicked, converted
    negative_streak: int = 0  # bounced, failed, ignored, since the last positive
    suppressed_until: float = 0.0
