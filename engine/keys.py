"""Redis keys the engine and the connectors share, named on the engine's side.

The web channel (connectors/channels/web.py) writes a contact's latest action under one, and an
erasure (engine/ops/privacy.py) deletes it: one definition, so they cannot drift apart, and the
engine never imports a connector to learn it. The visitor keys mirror the identity table's
`anon:` and `user:` records, so the Kafka collector can tell which contact a browser is.
"""

from __future__ import annotations

import hashlib

__all__ = ["latest_action_key", "visitor_key"]


def latest_action_key(contact_id: str) -> str:
    """Where a contact's latest next best action waits for websites (docs/privacy.md)."""
    return f"kairos:nba:{contact_id}"


def visitor_key(identifier: str) -> str:
    """Where the contact an `anon:…`/`user:…` identifier names is mirrored (hashed: a userId
    may be an email, and Redis need not hold it)."""
    return "kairos:visitor:" + hashlib.sha256(identifier.encode()).hexdigest()
