"""Who may post to the collector: Segment write keys and the webhook providers' signatures;
who may read from it: the site's servers with a secret read key.

Every failure is a 401 with a JSON body (`unauthorized` for a write or read key,
`bad_signature` for a webhook); a provider's retry of a correctly signed request is never
refused here. Write keys sit in public JavaScript, so they never authorise a read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Set

from connectors.intake import Rejected

SIGNATURE_TOLERANCE = 300.0  # seconds a webhook signature stays valid


def authenticate(headers: Mapping[str, str], write_keys: Set[str]) -> None:
    """Segment's write-key scheme: HTTP basic auth, the key as user name, no password."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Rejected(401, "unauthorized",
                       "missing write key (HTTP basic auth, the write key as user name)")
    try:
        user = base64.b64decode(value, validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        raise Rejected(401, "unauthorized", "malformed basic auth header") from None
    if not any(hmac.compare_digest(user.encode(), key.encode()) for key in write_keys):
        raise Rejected(401, "unauthorized", "unknown write key")


def authorize_read(headers: Mapping[str, str], read_keys: Set[str]) -> None:
    """A secret read key as a Bearer token; a write key (basic auth) never reads anything."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        raise Rejected(401, "unauthorized",
                       "a write key cannot read: send a read key (Authorization: Bearer)")
    if scheme.lower() != "bearer" or not value:
        raise Rejected(401, "unauthorized", "missing read key (Authorization: Bearer <read key>)")
    if not any(same(value, key) for key in read_keys):
        raise Rejected(401, "unauthorized", "unknown read key")


def verify_hmac(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
    """`X-Kairos-Signature: sha256=<hex HMAC of "<timestamp>.<body>">`, fresh timestamp."""
    if not secret:
        raise _bad("social webhook secret not configured: every request is refused")
    stamp = headers.get("X-Kairos-Timestamp", "")
    given = headers.get("X-Kairos-Signature", "").removeprefix("sha256=")
    fresh(stamp, now)
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not same(given, expected):
        raise _bad("bad signature")


def verify_ecdsa(headers: Mapping[str, str], body: bytes, public_key: str, now: float) -> None:
    """SendGrid signs timestamp + payload with ECDSA (P-256, SHA-256)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    if not public_key:
        raise _bad("email webhook public key not configured: every request is refused")
    stamp = headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
    signature = headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
    fresh(stamp, now)
    try:
        key = load_der_public_key(base64.b64decode(public_key))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise _bad("the configured webhook key is not an elliptic-curve key")
        key.verify(base64.b64decode(signature), stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        raise _bad("bad signature") from None


def fresh(stamp: str, now: float) -> None:
    """A signature timestamp within the tolerance of now: an old request is not replayed."""
    try:
        t = float(stamp)
    except ValueError:
        raise _bad("missing or malformed signature timestamp") from None
    if not abs(now - t) <= SIGNATURE_TOLERANCE:  # `not <=`: a NaN timestamp is stale too
        raise _bad(f"stale signature (more than {SIGNATURE_TOLERANCE:.0f} s off)")


def same(given: str, expected: str) -> bool:
    """Constant-time comparison that takes any text a header can carry."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def _bad(message: str) -> Rejected:
    return Rejected(401, "bad_signature", message)
