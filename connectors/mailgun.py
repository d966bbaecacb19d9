"""Mailgun's event webhook, normalised at the edge into the email topic's one shape.

Mailgun posts one event per request, `{"signature": {"timestamp", "token", "signature"},
"event-data": {...}}`, signed with HMAC-SHA256 of timestamp + token under the webhook signing
key. The event becomes the SendGrid-shaped record the email topic already carries, so the
engine has one email decoder and Mailgun's events feed consent and suppression exactly as
SendGrid's do; an event this mapping does not know keeps its own name and is dead-lettered.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from connectors.intake import Rejected
from connectors.signatures import fresh, same

__all__ = ["EVENT_DATA", "RENAMED", "normalise", "verify"]

EVENT_DATA = "$['event-data']"  # where the event sits in the request, for fields at fault
EVENTS = {"accepted": "processed", "rejected": "dropped", "delivered": "delivered",
          "opened": "open", "clicked": "click", "unsubscribed": "unsubscribe",
          "complained": "spamreport"}
BLOCKED_REASONS = frozenset({"espblock"})  # refused by the receiving provider, not the mailbox
# The email record's field names as Mailgun calls them.
RENAMED = {"email": "recipient", "sg_event_id": "id", "sg_message_id": "message",
           "kairos_action_id": "user-variables", "category": "tags"}


def verify(payload: Any, signing_key: str, now: float) -> None:
    """The `signature` object, as Mailgun's docs say: hex HMAC-SHA256 of timestamp + token."""
    if not signing_key:
        raise Rejected(401, "bad_signature",
                       "Mailgun signing key not configured: every request is refused")
    signature = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(signature, dict):
        raise Rejected(401, "bad_signature", "no signature object", "$.signature")
    stamp, token, given = (signature.get(k) for k in ("timestamp", "token", "signature"))
    if not isinstance(stamp, str | int) or not isinstance(token, str) or \
            not isinstance(given, str):
        raise Rejected(401, "bad_signature", "signature needs timestamp, token and signature",
                       "$.signature")
    fresh(str(stamp), now)
    expected = hmac.new(signing_key.encode(), f"{stamp}{token}".encode(), hashlib.sha256)
    if not same(given, expected.hexdigest()):
        raise Rejected(401, "bad_signature", "bad signature", "$.signature.signature")


def normalise(data: Any) -> Any:
    """Mailgun's `event-data` as the email topic's record; anything but an object unchanged."""
    if not isinstance(data, dict):
        return data
    event = data.get("event")
    name = EVENTS.get(event, event) if isinstance(event, str) else event
    if event == "failed":
        name = "bounce" if data.get("severity") == "permanent" else "deferred"
    record: dict[str, Any] = {"event": name, "email": data.get("recipient"),
                              "timestamp": data.get("timestamp"),
                              "sg_event_id": _prefixed(data.get("id"))}
    status = data.get("delivery-status")
    status = status if isinstance(status, dict) else {}
    reason = status.get("description") or status.get("message") or data.get("reason")
    headers = _object(_object(data.get("message")).get("headers"))
    optional = {
        "sg_message_id": headers.get("message-id"),
        "url": data.get("url"),
        "reason": reason if isinstance(reason, str) and reason else None,
        "type": ("blocked" if data.get("reason") in BLOCKED_REASONS else "bounce")
        if name == "bounce" else None,
        "kairos_action_id": _object(data.get("user-variables")).get("kairos_action_id"),
        "category": data.get("tags") or None,
    }
    record.update((k, v) for k, v in optional.items() if v is not None)
    return record


def _prefixed(event_id: Any) -> Any:
    """Mailgun's event id, kept apart from SendGrid's in the one id space the engine dedupes."""
    return f"mailgun:{event_id}" if isinstance(event_id, str) and event_id else event_id


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
