"""Signed links: a token that says what a link may do, for whom, until when.

A token is `<payload>.<mac>`, both base64url without padding. The payload is the JSON array
`[purpose, subject, data, expires]`: `purpose` names what the link does (`unsubscribe`,
`click`), `subject` whom it is for (a contact id), `data` what the purpose needs (a
subscription group, a redirect target: opaque here), `expires` the epoch second after which it
no longer works. The MAC is HMAC-SHA256 under `KAIROS_LINK_SECRET` over the payload, so none of
the four can be changed without the secret, and a token signed for one purpose is refused by
every other (the purpose is checked after the MAC, by name).

    signer = Signer(settings.link_secret)
    token = signer.sign("click", contact_id, target_url, expires=time.time() + 7 * 86400)
    link = signer.verify("click", token, now=time.time())  # or raises Rejected (4xx)
    link.subject, link.data

Refusals are `Rejected` with a JSON-able code: `invalid_token` (400: not a token at all),
`bad_signature` (401: forged or altered), `wrong_purpose` (401), `expired_token` (401).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

import orjson

from connectors.intake import Rejected
from engine.errors import SettingsError
from engine.model.events import iso

__all__ = ["MIN_SECRET", "Link", "Signer"]

MIN_SECRET = 16  # characters: a shorter secret is guessable offline from one token
MAX_TOKEN = 4096  # characters: longer is not one of ours, refused before any decoding
_DOMAIN = b"kairos-link-v1\n"  # separates these MACs from any other use of the same secret


@dataclass(frozen=True, slots=True)
class Link:
    """What a verified token says."""

    purpose: str
    subject: str
    data: str
    expires: int


class Signer:
    """Signs and verifies link tokens under one secret."""

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET:
            raise SettingsError(f"KAIROS_LINK_SECRET must be at least {MIN_SECRET} characters "
                                "(signed links: unsubscribe and tracked links)")
        self._key = secret.encode()

    def sign(self, purpose: str, subject: str, data: str, expires: float) -> str:
        payload = _b64(orjson.dumps([purpose, subject, data, int(expires)]))
        return f"{payload}.{self._mac(payload)}"

    def verify(self, purpose: str, token: str, now: float) -> Link:
        """The link, if the token is ours, unaltered, for `purpose` and not expired."""
        payload, dot, mac = token.partition(".")
        if not dot or not payload or len(token) > MAX_TOKEN:
            raise Rejected(400, "invalid_token", "not a link token (expected payload.signature)")
        if not hmac.compare_digest(mac.encode("utf-8", "surrogateescape"),
                                   self._mac(payload).encode()):
            raise Rejected(401, "bad_signature", "the link's signature does not match: it was "
                                                 "altered or not issued by us")
        link = _decoded(payload)
        if link.purpose != purpose:
            raise Rejected(401, "wrong_purpose",
                           f"this link is for {link.purpose!r}, not {purpose!r}")
        if now > link.expires:
            raise Rejected(401, "expired_token", f"the link expired at {iso(link.expires)}")
        return link

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, _DOMAIN + payload.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decoded(payload: str) -> Link:
    """The payload of a token whose MAC matched: malformed only if signed malformed."""
    try:
        fields = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        purpose, subject, data, expires = fields
        if not all(isinstance(f, str) for f in (purpose, subject, data)) \
                or not isinstance(expires, int):
            raise ValueError(fields)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
        raise Rejected(400, "invalid_token", "the link's payload is malformed") from None
    return Link(purpose, subject, data, expires)
