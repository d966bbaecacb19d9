"""What the keyed steps need of a table: bytes by key, or decoded records (contact states, item
records) by key.

Both runtimes hand the pipeline one of these, so the steps never know whether a table is a dict,
a local RocksDB or a RocksDB with a changelog (engine/storage/changelog.py).
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from engine.model.catalogue import ItemRecord
from engine.model.state import ContactState

__all__ = ["BytesStore", "ItemStore", "RecordStore", "StateStore"]

R = TypeVar("R")


class BytesStore(Protocol):
    """A table of bytes: RocksDB embedded, changelogged RocksDB on Kafka, a dict in memory."""

    def get(self, key: str) -> bytes | None: ...
    def __setitem__(self, key: str, value: bytes) -> None: ...
    def __delitem__(self, key: str) -> None: ...


class RecordStore(Protocol[R]):
    """Records as objects: how the contacts and item steps read and write theirs."""

    def load(self, key: str) -> R | None: ...
    def save(self, key: str, record: R) -> None: ...
    def delete(self, key: str) -> None: ...


StateStore = RecordStore[ContactState]
ItemStore = RecordStore[ItemRecord]
