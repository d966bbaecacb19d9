"""Tracked links for SMS and push: clicks for channels whose providers report none.

The HTTP provider replaces an action's `payload.url` (and that URL in its text) with
`<KAIROS_LINK_BASE>/v1/r/<token>`; the collector's `GET /v1/r/<token>` records a `clicked`
outcome for the action and redirects to the target. The token is the link's facts (action,
contact, channel, target, expiry) and an HMAC-SHA256 of them with `KAIROS_LINK_SECRET`, so a
link cannot be forged, pointed elsewhere (no open redirect) or credited to another action, and
it stops working after `KAIROS_LINK_TTL_DAYS`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import orjson

from engine.model.actions import Action

__all__ = ["LinkClick", "LinkError", "LinkSigner", "open_link_token", "sign_link_token"]

PURPOSE = b"kairos-tracked-link\x00"  # no other signed token of ours verifies as a link


class LinkError(Exception):
    """A link token that is forged, mangled or expired."""


@dataclass(frozen=True, slots=True)
class LinkClick:
    action_id: str
    contact_id: str
    channel: str
    action: str
    target: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, PURPOSE + body, hashlib.sha256).digest()


def sign_link_token(secret: bytes, action: Action, target: str, expires: float) -> str:
    """A token bound to the action and the target, valid until `expires` (epoch seconds)."""
    if not target.startswith(("https://", "http://")):
        raise ValueError(f"a tracked link goes to an http(s) URL, not {target[:40]!r}")
    body = orjson.dumps({"a": action.action_id, "c": action.contact_id, "h": action.channel,
                         "n": action.action, "u": target, "e": int(expires)})
    return f"{_b64(body)}.{_b64(_mac(secret, body))}"


def open_link_token(secret: bytes, token: str, now: float) -> LinkClick:
    """The click a token stands for, or `LinkError` saying why not."""
    encoded, _, mac = token.partition(".")
    try:
        body, given = _unb64(encoded), _unb64(mac)
    except (ValueError, TypeError):
        raise LinkError("not a link token") from None
    if not hmac.compare_digest(given, _mac(secret, body)):
        raise LinkError("not a link token")
    facts = orjson.loads(body)
    if now >= facts["e"]:
        raise LinkError("this link has expired")
    return LinkClick(facts["a"], facts["c"], facts["h"], facts["n"], facts["u"])


@dataclass(frozen=True, slots=True)
class LinkSigner:
    """What a connector needs to track an action's links: the collector's public base URL."""

    base: str
    secret: bytes
    ttl: float  # seconds a link keeps working

    def track(self, action: Action, target: str, now: float) -> str:
        token = sign_link_token(self.secret, action, target, now + self.ttl)
        return f"{self.base.rstrip('/')}/v1/r/{token}"
