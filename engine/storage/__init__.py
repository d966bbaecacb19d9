"""Where the keyed steps keep their tables, one module per kind of store.

`base` declares what the steps need (`BytesStore`, `StateStore`, `ItemStore`); `memory` and
`rocksdb` are the embedded runtime's tables; `cache` turns a bytes table into a store of decoded
contact states or item records; the Kafka
runtime's changelogged RocksDB tables live in `engine.storage.changelog` (imported from there:
it needs aiokafka, which an embedded run does not).
"""

from engine.storage.base import BytesStore, ItemStore, StateStore
from engine.storage.cache import CachedItems, CachedStates, Caches
from engine.storage.memory import MemoryStore
from engine.storage.rocksdb import RocksStore

__all__ = ["BytesStore", "CachedItems", "CachedStates", "Caches", "ItemStore", "MemoryStore",
           "RocksStore", "StateStore"]
