"""What the keyed steps need of a table: bytes by key, or contact states by key.

Both runtimes hand the pipeline one of these, so the steps never know whether a table is a dict,
a local RocksDB or a RocksDB with a changelog (engine/storage/changelog.py).
"""

from __future__ import annotations

from typing import Protocol

from engine.model.state import ContactState

__all__ = ["BytesStore", "StateStore"]


class BytesStore(Protocol):
    """A table of bytes: RocksDB embedded, changelogged RocksDB on Kafka, a dict in memory."""

    def get(self, key: str) -> bytes | None: ...
    def __setitem__(self, key: str, value: bytes) -> None: ...
    def __delitem__(self, key: str) -> None: ...


class StateStore(Protocol):
    """Contact states as objects: how the contacts step reads and writes them."""

    def load(self, key: str) -> ContactState | None: ...
    def save(self, key: str, state: ContactState) -> None: ...
    def delete(self, key: str) -> None: ...
