"""Tracked links for SMS and push: clicks for channels whose providers report none.

The HTTP provider replaces an action's `payload.url` (and that URL in its rendered content) with
`<KAIROS_PUBLIC_URL>/v1/r/<token>`; the collector's `GET /v1/r/<token>` records a `clicked`
outcome for the action and redirects to the target. The token is the link's facts (action,
contact, channel, target, expiry) signed as every link is (connectors/links.py), so a
link cannot be forged, pointed elsewhere (no open redirect) or credited to another action, and
it stops working after `KAIROS_LINK_TTL_DAYS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from connectors.intake import Rejected
from connectors.links import Signer
from engine.model.actions import Action

__all__ = ["LinkClick", "LinkError", "LinkSigner", "open_link_token", "sign_link_token"]

PURPOSE = "click"  # connectors/links.py: no other purpose's token verifies as a link


class LinkError(Exception):
    """A link token that is forged, mangled, signed for another purpose or expired."""


@dataclass(frozen=True, slots=True)
class LinkClick:
    action_id: str
    contact_id: str
    channel: str
    action: str
    target: str


def sign_link_token(secret: str, action: Action, target: str, expires: float) -> str:
    """A token bound to the action and the target, valid until `expires` (epoch seconds)."""
    if not target.startswith(("https://", "http://")):
        raise ValueError(f"a tracked link goes to an http(s) URL, not {target[:40]!r}")
    facts = orjson.dumps({"a": action.action_id, "h": action.channel, "n": action.action,
                          "u": target}).decode()
    return Signer(secret).sign(PURPOSE, action.contact_id, facts, expires)


def open_link_token(secret: str, token: str, now: float) -> LinkClick:
    """The click a token stands for, or `LinkError` saying why not."""
    try:
        link = Signer(secret).verify(PURPOSE, token, now)
    except Rejected as exc:
        raise LinkError(str(exc)) from None
    facts = orjson.loads(link.data)
    return LinkClick(facts["a"], link.subject, facts["h"], facts["n"], facts["u"])


@dataclass(frozen=True, slots=True)
class LinkSigner:
    """What a connector needs to track an action's links: the collector's public base URL."""

    base: str
    secret: str
    ttl: float  # seconds a link keeps working

    def track(self, action: Action, target: str, now: float) -> str:
        token = sign_link_token(self.secret, action, target, now + self.ttl)
        return f"{self.base.rstrip('/')}/v1/r/{token}"
