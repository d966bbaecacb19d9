"""Records kept decoded in memory over a bytes table, written back in batches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from engine.model import state as state_codec
from engine.model.catalogue import ItemRecord, decode_record, encode_record
from engine.model.state import ContactState
from engine.storage.base import BytesStore

__all__ = ["CachedItems", "CachedRecords", "CachedStates", "Caches"]

R = TypeVar("R")


class CachedRecords(Generic[R]):
    """Decoded records kept in memory and written back in batches (a `RecordStore`).

    Replays and busy keys skip a decode and an encode per message; `flush()` (every `batch`
    writes, on demand and at close) puts every changed record back into the store. Records
    are encoded only there, so that is where `on_encoded` hears each written size.
    """

    def __init__(
        self,
        store: BytesStore,
        encode: Callable[[R], bytes],
        decode: Callable[[bytes], R],
        capacity: int = 100_000,
        batch: int = 1024,
        on_encoded: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.store = store
        self.encode = encode
        self.decode = decode
        self.capacity = capacity
        self.batch = batch
        self.on_encoded = on_encoded
        self._cache: dict[str, R] = {}
        self._dirty: set[str] = set()
        self._deleted: set[str] = set()

    def load(self, key: str) -> R | None:
        record = self._cache.get(key)
        if record is None:
            if key in self._deleted:
                return None
            raw = self.store.get(key)
            if raw is None:
                return None
            record = self._cache[key] = self.decode(raw)
            if len(self._cache) > self.capacity:
                self._evict()
        return record

    def save(self, key: str, record: R) -> None:
        self._cache[key] = record
        self._dirty.add(key)
        self._deleted.discard(key)
        if len(self._dirty) >= self.batch:
            self.flush()
        if len(self._cache) > self.capacity:  # new keys fill it too, not only reads
            self._evict()

    def delete(self, key: str) -> None:
        self._cache.pop(key, None)
        self._dirty.discard(key)
        self._deleted.add(key)

    @property
    def dirty(self) -> bool:
        return bool(self._dirty or self._deleted)

    def clear(self) -> None:
        """Write back, then forget every cached record (they may change elsewhere now)."""
        self.flush()
        self._cache.clear()

    def flush(self) -> None:
        for key in self._dirty:
            raw = self.encode(self._cache[key])
            self.on_encoded(len(raw))
            self.store[key] = raw
        self._dirty.clear()
        for key in self._deleted:
            with contextlib.suppress(KeyError):
                del self.store[key]
        self._deleted.clear()

    def _evict(self) -> None:
        self.flush()
        for key in list(self._cache)[: len(self._cache) // 2]:  # oldest inserted first
            del self._cache[key]


class CachedStates(CachedRecords[ContactState]):
    """Contact states over the contacts table (the runtimes give `on_encoded` the
    `kairos_contact_state_bytes` histogram)."""

    def __init__(self, store: BytesStore, capacity: int = 100_000, batch: int = 1024,
                 on_encoded: Callable[[int], None] = lambda size: None) -> None:
        super().__init__(store, state_codec.encode, state_codec.decode, capacity, batch,
                         on_encoded)


class CachedItems(CachedRecords[ItemRecord]):
    """Item records over the items table: a busy item's index of interested contacts (up to
    a thousand) is decoded once, not at every product view that names it."""

    def __init__(self, store: BytesStore, capacity: int = 100_000,
                 batch: int = 1024) -> None:
        super().__init__(store, encode_record, decode_record, capacity, batch)


class Caches:
    """The decoded caches of one runtime's tables, written back and forgotten together: a
    commit, an acknowledged batch or a revoke must never leave one table's changes behind."""

    def __init__(self, *caches: CachedRecords[Any]) -> None:
        self.caches = caches

    @property
    def dirty(self) -> bool:
        return any(c.dirty for c in self.caches)

    def flush(self) -> None:
        for c in self.caches:
            c.flush()

    def clear(self) -> None:
        for c in self.caches:
            c.clear()
