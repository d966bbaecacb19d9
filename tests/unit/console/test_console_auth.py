"""Console credentials: hashed, checked in constant time, never the collector's write keys."""

import base64

import pytest

from engine.console.auth import Users, hash_password
from engine.console.mask import mask, mask_identifier, mask_traits


def basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


def test_plain_and_hashed_passwords_open_the_console_and_wrong_ones_do_not():
    users = Users.parse(f"ann:pw1, bob:{hash_password('pw2')}", unmasked="ann")
    assert users.check(basic("ann", "pw1")).unmasked is True
    assert users.check(basic("bob", "pw2")).unmasked is False
    assert users.check(basic("ann", "pw2")) is None
    assert users.check(basic("eve", "pw1")) is None
    assert users.check("Bearer pw1") is None
    assert users.check("Basic !!!") is None
    assert users.check(None) is None


def test_no_plain_password_is_kept_in_memory():
    users = Users.parse("ann:a-rather-long-password")
    assert b"a-rather-long-password" not in repr(users.entries).encode()


def test_a_write_key_is_no_console_credential():
    users = Users.parse("ann:pw1")
    for header in (basic("write-key", ""), basic("", "write-key"), basic("ann", "write-key")):
        assert users.check(header) is None


def test_a_verified_header_is_remembered_for_a_while_only():
    users = Users.parse("ann:pw1")
    header = basic("ann", "pw1")
    assert users.check(header, now=0.0)
    users.entries.clear()  # the password is gone: only the remembered check can answer
    assert users.check(header, now=100.0) is not None
    assert users.check(header, now=1000.0) is None


@pytest.mark.parametrize(("users", "unmasked", "match"), [
    ("ann", "", "needs name:password"),
    ("ann:", "", "needs name:password"),
    ("ann:scrypt$1$2", "", "scrypt\\$n\\$r\\$p\\$salt\\$hash"),
    ("ann:pw", "bob", "names no console user: bob"),
])
def test_bad_settings_are_refused_with_what_is_wrong(users, unmasked, match):
    with pytest.raises(ValueError, match=match):
        Users.parse(users, unmasked)


def test_masking_keeps_the_domain_and_the_last_digits_only():
    assert mask("alice@example.com") == "a•••@example.com"
    assert mask("+447700900123") == "+44••••••••23"
    assert mask_identifier("email:alice@example.com") == "email:a•••@example.com"
    assert mask_identifier("user:u42") == "user:u42"
    assert mask_traits({"email": "a@b.co", "mobile_phone": "0700123456", "city": "Leeds"}) == {
        "email": "a•••@b.co", "mobile_phone": "07••••••56", "city": "Leeds"}
