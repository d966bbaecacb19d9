"""Reading recorded events: JSON lines of the three input shapes, mixed, optionally gzipped."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO


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
