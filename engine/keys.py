"""Redis keys the engine and the connectors share, named on the engine's side.

The web channel (connectors/channels/web.py) writes a contact's latest action under one, and an
erasure (engine/ops/privacy.py) deletes it: one definition, so they cannot drift apart, and the
engine never imports a connector to learn it.
"""

from __future__ import annotations

__all__ = ["latest_action_key"]


def latest_action_key(contact_id: str) -> str:
    """Where a contact's latest next best action waits for websites (docs/privacy.md)."""
    return f"kairos:nba:{contact_id}"
