"""Where the keyed steps keep their tables: bytes stores, and contact states on top of them.

RocksDB on disk (rocksdict) or a dict in memory for the embedded runtime, a RocksDB table with a
changelog in the Kafka runtime (engine/storage/changelog.py); `CachedStates` turns one into a
store of contact states.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from rocksdict import Options, Rdict

from engine.model import state as state_codec
from engine.model.state import ContactState


class BytesStore(Protocol):
    """A table of bytes: RocksDB embedded, changelogged RocksDB on Kafka, a dict in memory."""

    def get(self, key: str) -> bytes | None: ...
    def __setitem__(self, key: str, value: bytes) -> None: ...
    def __delitem__(self, key: str) -> None: ...


class RocksStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path), Options(raw_mode=True))

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self._db.get(key.encode())
        return value

    def __setitem__(self, key: str, value: bytes) -> None:
        self._db[key.encode()] = value

    def __delitem__(self, key: str) -> None:
        del self._db[key.encode()]

    def items(self) -> Iterator[tuple[str, bytes]]:
        for k, v in self._db.items():  # raw mode: keys and values are bytes
            yield k.decode(), v  # type: ignore[union-attr]

    def close(self) -> None:
        self._db.close()


class MemoryStore(dict[str, bytes]):
    def close(self) -> None:
        pass


class StateStore(Protocol):
    """Contact states as objects: how the contacts step reads and writes them."""

    def load(self, key: str) -> ContactState | None: ...
    def save(self, key: str, state: ContactState) -> int: ...
    def delete(self, key: str) -> None: ...


class CachedStates:
    """Decoded states kept in memory and written back in batches (the embedded runtime).

    Replays and busy contacts skip a decode and an encode per message; `flush()` (every
    `batch` writes, on demand and at close) puts every changed state back into the store.
    """

    def __init__(self, store: BytesStore, capacity: int = 100_000, batch: int = 1024) -> None:
        self.store = store
        self.capacity = capacity
        self.batch = batch
        self._cache: dict[str, ContactState] = {}
        self._dirty: set[str] = set()
        self._deleted: set[str] = set()

    def load(self, key: str) -> ContactState | None:
        st = self._cache.get(key)
        if st is None:
            if key in self._deleted:
                return None
            raw = self.store.get(key)
            if raw is None:
                return None
            st = self._cache[key] = state_codec.decode(raw)
            if len(self._cache) > self.capacity:
                self._evict()
        return st

    def save(self, key: str, state: ContactState) -> int:
        self._cache[key] = state
        self._dirty.add(key)
        self._deleted.discard(key)
        if len(self._dirty) >= self.batch:
            self.flush()
        if len(self._cache) > self.capacity:  # new contacts fill it too, not only reads
            self._evict()
        return 0

    def delete(self, key: str) -> None:
        self._cache.pop(key, None)
        self._dirty.discard(key)
        self._deleted.add(key)

    @property
    def dirty(self) -> bool:
        return bool(self._dirty or self._deleted)

    def clear(self) -> None:
        """Write back, then forget every cached state (they may change elsewhere now)."""
        self.flush()
        self._cache.clear()

    def flush(self) -> None:
        for key in self._dirty:
            self.store[key] = state_codec.encode(self._cache[key])
        self._dirty.clear()
        for key in self._deleted:
            with contextlib.suppress(KeyError):
                del self.store[key]
        self._deleted.clear()

    def _evict(self) -> None:
        self.flush()
        for key in list(self._cache)[: len(self._cache) // 2]:  # oldest inserted first
            del self._cache[key]
