"""Visitor tokens: the site's server vouches, for a short while, that a browser is one visitor.

A token is `<expires unix>.<hex HMAC-SHA256(secret, "<kind>:<id>|<expires unix>")>`, where kind
is `anon` (Segment's anonymousId) or `user` (its userId). The browser sends its identity and the
token; the collector answers only that identity's action. The secret never leaves the servers,
so a token for one visitor can neither be made nor turned into one for another.

Every refusal is a 401 whose code says what is wrong: `missing_token`, `malformed_token`,
`expired_token`, `token_too_long_lived` (expiring beyond the configured maximum lifetime) or
`bad_token` (not signed for this identity with this secret: forged, tampered or foreign).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from connectors.intake import Rejected

__all__ = ["KINDS", "sign", "verify"]

KINDS = {"anonymousId": "anon", "userId": "user"}  # the browser's names -> identifier kinds
TOKEN = re.compile(r"(?P<expires>[0-9]{1,12})\.(?P<signature>[0-9a-f]{64})")


def _mac(secret: str, identifier: str, expires: int) -> str:
    message = f"{identifier}|{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, identifier: str, expires: int) -> str:
    """The token for `identifier` (`anon:…` or `user:…`), valid until `expires` (unix)."""
    return f"{expires}.{_mac(secret, identifier, expires)}"


def verify(secret: str, identifier: str, token: str | None, now: float, max_age: float) -> None:
    """Accept a token signed for exactly `identifier`, unexpired and not longer-lived than
    `max_age` seconds (a leaked token is worth little), or raise a 401 naming the fault."""
    if not secret:
        raise _refused("missing_token", "visitor reads are not configured on this collector "
                                        "(KAIROS_WEB_TOKEN_SECRET): every token is refused")
    if not token:
        raise _refused("missing_token", "missing visitor token (X-Kairos-Visitor-Token header "
                                        "or `token` query parameter)")
    found = TOKEN.fullmatch(token)
    if found is None:
        raise _refused("malformed_token", "a visitor token is `<expires unix>.<64 hex digits>`")
    expires = int(found["expires"])
    if expires <= now:
        raise _refused("expired_token", "the visitor token has expired: ask the site for a new one")
    if expires > now + max_age:
        raise _refused("token_too_long_lived",
                       f"the visitor token expires more than {max_age:.0f} s from now")
    if not hmac.compare_digest(found["signature"], _mac(secret, identifier, expires)):
        raise _refused("bad_token", "the visitor token was not signed for this visitor")


def _refused(code: str, message: str) -> Rejected:
    return Rejected(401, code, message)
