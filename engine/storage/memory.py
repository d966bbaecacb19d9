"""A table in a dict: the embedded runtime without a data directory (tests, the demo, replays)."""

from __future__ import annotations

__all__ = ["MemoryStore"]


class MemoryStore(dict[str, bytes]):
    """A `BytesStore` that is a dict; `close` so runtimes close every table the same way."""

    def close(self) -> None:
        pass
