"""Dead letters: bad input kept with the reason, never silently dropped."""

from __future__ import annotations

import base64

import msgspec


class DeadLetter(msgspec.Struct, kw_only=True, omit_defaults=True):
    reason: str
    source: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    value: str = ""
    value_b64: str | None = None
    at: str = ""

    @classmethod
    def of(cls, reason: str, source: str, raw: bytes, **where: object) -> DeadLetter:
        """Keep the original bytes: as text when they are UTF-8, base64 otherwise."""
        try:
            text, b64 = raw.decode("utf-8"), None
        except UnicodeDecodeError:
            text, b64 = "", base64.b64encode(raw).decode()
        return cls(reason=reason, source=source, value=text, value_b64=b64, **where)  # type: ignore[arg-type]

    def original(self) -> bytes:
        return base64.b64decode(self.value_b64) if self.value_b64 else self.value.encode()

    def category(self) -> str:
        """The reason's class, a label small enough for a metric."""
        return self.reason.split(":", 1)[0]


_encoder = msgspec.json.Encoder()


def encode(letter: DeadLetter) -> bytes:
    return _encoder.encode(letter)


def decode(raw: bytes) -> DeadLetter:
    return msgspec.json.decode(raw, type=DeadLetter)
