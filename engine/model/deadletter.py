"""Dead letters: bad input kept with the reason, never silently dropped, and replayable.

A letter keeps what it takes to put the original record back where it came from: the value
and key bytes (text when UTF-8, base64 otherwise; a null told from an empty one), the headers,
the timestamp and its type, besides topic, partition and offset. Every field past `reason`
and `source` has a default, so letters written before a field existed still decode.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import msgspec

__all__ = ["DeadLetter", "Header", "decode", "encode"]


class Header(msgspec.Struct, array_like=True, frozen=True):
    """One record header as `[name, value, b64]`: the value as text, or base64 when `b64`
    (not UTF-8); a null value stays null."""

    name: str
    value: str | None
    b64: bool = False

    @classmethod
    def of(cls, name: str, raw: bytes | None) -> Header:
        if raw is None:
            return cls(name, None)
        text, b64 = _text(raw)
        return cls(name, text) if b64 is None else cls(name, b64, True)

    def original(self) -> bytes | None:
        if self.value is None:
            return None
        return base64.b64decode(self.value) if self.b64 else self.value.encode()


class DeadLetter(msgspec.Struct, kw_only=True, omit_defaults=True):
    reason: str
    source: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None  # absent with key_b64: a null key; "" an empty one
    key_b64: str | None = None
    value: str = ""
    value_b64: str | None = None
    value_null: bool = False  # a null value (a tombstone), told from an empty one
    headers: list[Header] = []
    timestamp: int | None = None  # ms since the epoch, as the record carried it
    timestamp_type: int | None = None  # Kafka's: 0 create time, 1 log append time
    at: str = ""

    @classmethod
    def of(cls, reason: str, source: str, raw: bytes | None, **where: object) -> DeadLetter:
        """Keep the original bytes: as text when they are UTF-8, base64 otherwise."""
        text, b64 = _text(raw)
        return cls(reason=reason, source=source, value=text, value_b64=b64,
                   value_null=raw is None, **where)  # type: ignore[arg-type]

    def with_record(self, key: bytes | None, headers: Sequence[tuple[str, bytes | None]],
                    timestamp: int | None, timestamp_type: int | None) -> DeadLetter:
        """This letter with what else its Kafka record carried (only bad records pay for it)."""
        text, b64 = _text(key)
        return msgspec.structs.replace(
            self, key=None if key is None or b64 is not None else text, key_b64=b64,
            headers=[Header.of(name, value) for name, value in headers],
            timestamp=timestamp, timestamp_type=timestamp_type)

    def original(self) -> bytes | None:
        """The value's bytes as they arrived; None for a null value."""
        if self.value_null:
            return None
        return base64.b64decode(self.value_b64) if self.value_b64 else self.value.encode()

    def original_key(self) -> bytes | None:
        """The key's bytes as they arrived; None for a null key."""
        if self.key_b64 is not None:
            return base64.b64decode(self.key_b64)
        return None if self.key is None else self.key.encode()

    def original_headers(self) -> list[tuple[str, bytes | None]]:
        return [(h.name, h.original()) for h in self.headers]

    def category(self) -> str:
        """The reason's class, a label small enough for a metric."""
        return self.reason.split(":", 1)[0]


def _text(raw: bytes | None) -> tuple[str, str | None]:
    """(text, None) for UTF-8 bytes (or none), ("", base64) otherwise."""
    if raw is None:
        return "", None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return "", base64.b64encode(raw).decode()


_encoder = msgspec.json.Encoder()


def encode(letter: DeadLetter) -> bytes:
    return _encoder.encode(letter)


def decode(raw: bytes) -> DeadLetter:
    return msgspec.json.decode(raw, type=DeadLetter)
