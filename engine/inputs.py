"""Reading recorded events: JSON lines of the three input shapes, mixed, optionally gzipped."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import msgspec

from engine.events import Source

TOPIC_SOURCES: dict[str, Source] = {
    "clickstream": "clickstream",
    "email-events": "email",
    "social-interactions": "social",
}


class _Sniff(msgspec.Struct):
    sg_event_id: object = None
    network: object = None
    messageId: object = None


_sniffer = msgspec.json.Decoder(_Sniff)


def detect_source(raw: bytes) -> Source:
    """Which input shape a JSON object is: email webhook, social, else Segment clickstream."""
    try:
        s = _sniffer.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return "clickstream"  # let the real decoder name what is wrong
    if s.sg_event_id is not None:
        return "email"
    if s.network is not None and s.messageId is None:
        return "social"
    return "clickstream"


def open_events(path: str | Path) -> IO[bytes]:
    if str(path) == "-":
        import sys

        return sys.stdin.buffer
    p = Path(path)
    if p.suffix == ".gz":
        return gzip.open(p, "rb")  # type: ignore[return-value]
    return p.open("rb")


def read_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line."""
    with open_events(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                yield n, line
