"""The next-best-action message: what the engine decided, for whom, on which channel, and why."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

CHANNELS = ("email", "sms", "push", "web", "crm", "print")


class Action(msgspec.Struct, gc=False, kw_only=True):
    action_id: str
    contact_id: str
    channel: str
    action: str
    rule_id: str
    rule_version: int
    score: float
    reason: str
    trigger_event_id: str
    event_time: str
    decided_at: str
    expires_at: str
    payload: dict[str, Any] = {}
    control_group: bool = False
    action_class: str = "marketing"
    recipient: str | None = None  # the address on `channel`: email, phone, push token
    # The subscription group whose consent the action needed; absent (not null) when none, so
    # actions without one encode as they always have.
    group: str | msgspec.UnsetType = msgspec.UNSET
    # What templates greet the contact with: first_name, city, locale... (engine/core/profile.py)
    profile: dict[str, str] = {}
    # The identifiers of the input event that triggered the action, to join actions with the
    # input (a backtest's history, a warehouse's events); absent when that event had none.
    trigger_user_id: str | msgspec.UnsetType = msgspec.UNSET
    trigger_anonymous_id: str | msgspec.UnsetType = msgspec.UNSET
    trigger_email: str | msgspec.UnsetType = msgspec.UNSET


def action_id(trigger_event_id: str, rule_id: str, action: str) -> str:
    """Same trigger and rule give the same id, so retries and replays never double-send."""
    digest = hashlib.blake2b(f"{trigger_event_id}|{rule_id}|{action}".encode(), digest_size=12)
    return "a" + digest.hexdigest()


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Action)


def encode(action: Action) -> bytes:
    return _encoder.encode(action)


def decode(raw: bytes) -> Action:
    return _decoder.decode(raw)
