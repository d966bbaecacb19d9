"""Contact states kept decoded in memory over a bytes table, written back in batches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from engine.model import state as state_codec
from engine.model.state import ContactState
from engine.storage.base import BytesStore

__all__ = ["CachedStates"]


class CachedStates:
    """Decoded states kept in memory and written back in batches (a `StateStore`).

    Replays and busy contacts skip a decode and an encode per message; `flush()` (every
    `batch` writes, on demand and at close) puts every changed state back into the store.
    States are encoded only there, so that is where `on_encoded` hears each written size
    (the runtimes give it the `kairos_contact_state_bytes` histogram).
    """

    def __init__(
        self,
        store: BytesStore,
        capacity: int = 100_000,
        batch: int = 1024,
        on_encoded: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.store = store
        self.capacity = capacity
        self.batch = batch
        self.on_encoded = on_encoded
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

    def save(self, key: str, state: ContactState) -> None:
        self._cache[key] = state
        self._dirty.add(key)
        self._deleted.discard(key)
        if len(self._dirty) >= self.batch:
            self.flush()
        if len(self._cache) > self.capacity:  # new contacts fill it too, not only reads
            self._evict()

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
            raw = state_codec.encode(self._cache[key])
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
