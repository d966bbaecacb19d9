"""The few traits a message template may greet a contact with, copied onto each action.

Connectors hold no contact state, so what a template needs about the person travels in the
action (`Action.profile`): a small, fixed set of short strings, never the whole trait map. The
action already is personal data (it carries the recipient's address); this adds no new kind.
"""

from __future__ import annotations

from typing import Any

from engine.model.state import ContactState

__all__ = ["PROFILE_FIELDS", "profile"]

PROFILE_FIELDS = ("first_name", "last_name", "name", "city", "country", "locale", "timezone")
MAX_LENGTH = 100  # characters a profile value keeps


def profile(state: ContactState) -> dict[str, str]:
    """Segment's spec traits (`firstName`, `address.city`, ...) under plain names, bounded."""
    t = state.traits
    given = t.get("address")
    address: dict[str, Any] = given if isinstance(given, dict) else {}
    name = _text(t.get("name"))
    first = _text(t.get("firstName") or t.get("first_name")) or (name.split()[0] if name else "")
    found = {
        "first_name": first,
        "last_name": _text(t.get("lastName") or t.get("last_name")),
        "name": name,
        "city": _text(address.get("city") or t.get("city")),
        "country": _text(address.get("country") or t.get("country")),
        "locale": _text(state.locale),
        "timezone": _text(state.timezone),
    }
    return {k: v for k, v in found.items() if v}


def _text(value: Any) -> str:
    return value.strip()[:MAX_LENGTH] if isinstance(value, str) else ""
