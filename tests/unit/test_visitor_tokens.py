"""Visitor tokens: signed for exactly one identity, short-lived, and refused with a reason."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from connectors.intake import Rejected
from connectors.visitor_tokens import sign, verify

SECRET = "web-token-secret"
NOW = 1_800_000_000.0
HOUR = 3600.0


def test_a_token_is_the_documented_hmac_and_verifies_for_its_identity() -> None:
    token = sign(SECRET, "anon:a-1", int(NOW) + 600)
    expected = hmac.new(SECRET.encode(), f"anon:a-1|{int(NOW) + 600}".encode(),
                        hashlib.sha256).hexdigest()
    assert token == f"{int(NOW) + 600}.{expected}"
    verify(SECRET, "anon:a-1", token, NOW, HOUR)  # no exception: accepted


def test_an_expired_token_is_refused() -> None:
    token = sign(SECRET, "anon:a-1", int(NOW) - 1)
    with pytest.raises(Rejected, match=r"has expired") as exc:
        verify(SECRET, "anon:a-1", token, NOW, HOUR)
    assert (exc.value.status, exc.value.code) == (401, "expired_token")


def test_a_token_living_longer_than_the_maximum_is_refused() -> None:
    token = sign(SECRET, "anon:a-1", int(NOW + 2 * HOUR))
    with pytest.raises(Rejected, match=r"more than 3600 s from now") as exc:
        verify(SECRET, "anon:a-1", token, NOW, HOUR)
    assert exc.value.code == "token_too_long_lived"


@pytest.mark.parametrize("identity", ["anon:a-2", "user:a-1", "anon:a-1 "])
def test_a_token_for_another_identity_is_refused(identity: str) -> None:
    token = sign(SECRET, "anon:a-1", int(NOW) + 600)
    with pytest.raises(Rejected, match=r"not signed for this visitor") as exc:
        verify(SECRET, identity, token, NOW, HOUR)
    assert (exc.value.status, exc.value.code) == (401, "bad_token")


def test_a_tampered_expiry_or_signature_or_another_secret_is_refused() -> None:
    expires = int(NOW) + 600
    token = sign(SECRET, "anon:a-1", expires)
    signature = token.partition(".")[2]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    for bad in (f"{expires + 60}.{signature}", f"{expires}.{flipped}",
                sign("other-secret", "anon:a-1", expires)):
        with pytest.raises(Rejected, match=r"not signed for this visitor"):
            verify(SECRET, "anon:a-1", bad, NOW, HOUR)


@pytest.mark.parametrize("token", ["garbage", "123", "1.abc", f"{int(NOW)}.{'G' * 64}",
                                   f"-5.{'0' * 64}", f"{int(NOW)}.{'0' * 64}.x", "é.é"])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(Rejected, match=r"<expires unix>\.<64 hex digits>") as exc:
        verify(SECRET, "anon:a-1", token, NOW, HOUR)
    assert exc.value.code == "malformed_token"


@pytest.mark.parametrize("token", [None, ""])
def test_a_missing_token_is_refused(token: str | None) -> None:
    with pytest.raises(Rejected, match=r"missing visitor token") as exc:
        verify(SECRET, "anon:a-1", token, NOW, HOUR)
    assert (exc.value.status, exc.value.code) == (401, "missing_token")


def test_without_a_secret_every_token_is_refused() -> None:
    token = sign("", "anon:a-1", int(NOW) + 600)
    with pytest.raises(Rejected, match=r"KAIROS_WEB_TOKEN_SECRET"):
        verify("", "anon:a-1", token, NOW, HOUR)
