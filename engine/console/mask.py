"""Emails and phone numbers masked for console users not allowed to see them.

The console shows a person's data to data teams; most of them need to see that an address
exists and which domain it is on, not the address itself.
"""

from __future__ import annotations

import re

__all__ = ["ADDRESS_CHANNELS", "mask", "mask_identifier", "mask_traits"]

# Channels whose address is personal data (push: a device token, as good as an address).
ADDRESS_CHANNELS = frozenset({"email", "sms", "whatsapp", "call", "push", "print"})
_PERSONAL_TRAITS = re.compile(r"e-?mail|phone|mobile|address|street|postcode|zip", re.I)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def mask(value: str) -> str:
    """`alice@example.com` -> `a•••@example.com`; `+447700900123` -> `+44•••••••23`;
    anything else keeps its first and last two characters."""
    if _EMAIL.fullmatch(value):
        local, _, domain = value.rpartition("@")
        return f"{local[:1]}•••@{domain}"
    if len(value) <= 4:
        return "•" * len(value)
    head = 3 if value.startswith("+") else 2
    return value[:head] + "•" * (len(value) - head - 2) + value[-2:]


def mask_identifier(identifier: str) -> str:
    """`email:alice@example.com` masked; users, devices and handles are pseudonymous ids."""
    kind, sep, value = identifier.partition(":")
    return f"{kind}:{mask(value)}" if sep and kind in ("email", "phone") else identifier


def mask_traits(traits: dict[str, object]) -> dict[str, object]:
    return {k: mask(v) if isinstance(v, str) and _PERSONAL_TRAITS.search(k) else v
            for k, v in traits.items()}
