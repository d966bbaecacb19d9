"""Who may open the console: its own users, never the collector's write keys.

`KAIROS_CONSOLE_USERS` lists `name:password` or `name:scrypt$<n>$<r>$<p>$<salt>$<hash>` entries
(the second from `kairos console hash-password`, so no plain password sits in the environment).
Plain passwords are hashed at start and forgotten; every check hashes what the browser sent and
compares digests in constant time. scrypt is slow on purpose, so a verified `Authorization`
header is remembered, as an HMAC under a key of this process, for a few minutes: pages that
refresh every few seconds do not pay for scrypt each time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from functools import cache

__all__ = ["ConsoleUser", "Users", "hash_password"]

SCRYPT = (2**14, 8, 1)  # n, r, p: about 16 MiB and tens of milliseconds per check
REMEMBER = 300.0  # seconds a verified header is trusted without scrypt


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    name: str
    unmasked: bool  # may see emails and phone numbers in full


@dataclass(frozen=True, slots=True)
class _Entry:
    salt: bytes
    digest: bytes
    cost: tuple[int, int, int]

    def matches(self, password: str) -> bool:
        n, r, p = self.cost
        given = hashlib.scrypt(password.encode(), salt=self.salt, n=n, r=r, p=p,
                               dklen=len(self.digest))
        return hmac.compare_digest(given, self.digest)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The `scrypt$…` form of a password, for `KAIROS_CONSOLE_USERS`."""
    salt = salt or secrets.token_bytes(16)
    n, r, p = SCRYPT
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def _entry(secret: str) -> _Entry:
    if not secret.startswith("scrypt$"):
        salt = secrets.token_bytes(16)
        secret = hash_password(secret, salt)
    try:
        _, n, r, p, salt_b64, digest_b64 = secret.split("$")
        return _Entry(base64.b64decode(salt_b64, validate=True),
                      base64.b64decode(digest_b64, validate=True), (int(n), int(r), int(p)))
    except (ValueError, binascii.Error) as exc:
        raise ValueError("a console password hash must be scrypt$n$r$p$salt$hash "
                         "(from `kairos console hash-password`)") from exc


@dataclass
class Users:
    """The console's users; `check` answers who an `Authorization` header is, or None."""

    entries: dict[str, _Entry] = field(default_factory=dict)
    unmasked: frozenset[str] = frozenset()
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _verified: dict[bytes, tuple[str, float]] = field(default_factory=dict)

    @classmethod
    def parse(cls, users: str, unmasked: str = "") -> Users:
        entries = {}
        for item in filter(None, (u.strip() for u in users.split(","))):
            name, sep, secret = item.partition(":")
            if not sep or not name or not secret:
                raise ValueError(f"KAIROS_CONSOLE_USERS: {name or item!r} needs name:password")
            entries[name] = _entry(secret)
        allowed = frozenset(filter(None, (u.strip() for u in unmasked.split(","))))
        unknown = sorted(allowed - entries.keys())
        if unknown:
            raise ValueError(f"KAIROS_CONSOLE_UNMASKED names no console user: {', '.join(unknown)}")
        return cls(entries, allowed)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def check(self, authorization: str | None, now: float | None = None) -> ConsoleUser | None:
        """The user of an HTTP Basic header whose password matches, else None."""
        if not authorization or not authorization.startswith("Basic "):
            return None
        now = time.monotonic() if now is None else now
        mark = hmac.digest(self._key, authorization.encode(), "sha256")
        known = self._verified.get(mark)
        if known is not None and now - known[1] < REMEMBER:
            return self._user(known[0])
        try:
            name, _, password = base64.b64decode(authorization[6:], validate=True) \
                .decode().partition(":")
        except (ValueError, binascii.Error):
            return None
        entry = self.entries.get(name)
        if entry is None:
            _absent().matches(password)  # as slow as a known name: timing tells no names apart
            return None
        if not entry.matches(password):
            return None
        if len(self._verified) > 1024:
            self._verified.clear()
        self._verified[mark] = (name, now)
        return self._user(name)

    def _user(self, name: str) -> ConsoleUser:
        return ConsoleUser(name, name in self.unmasked)


@cache
def _absent() -> _Entry:
    return _entry("no such user")
