"""The local store of the Kairos tables: Faust's RocksDB store, one database per key's partition.

Faust's RocksDB store keeps a key in the database of the partition of the event that wrote it.
The Kairos tables are written from whichever event leads to a key (an email click updates a
contact first seen on the clickstream), so with `use_partitioner=True` (the changelog record
goes to the key's own partition) one key would end up in several local databases, and a read
would return whichever copy it found first. This store keeps each key in the database of its
changelog partition, the one recovery writes to, so the local copy and the changelog agree.
It implements the store's own read/write/delete hooks and nothing else.
"""

from __future__ import annotations

from typing import Any

from faust.stores.rocksdb import Store

from engine.storage.changelog import partition_of

__all__ = ["KeyPartitionedStore", "url"]


def url(table: str) -> str:
    """The store URL of `table`: Faust resolves its scheme as an import path (lower-cased),
    and takes its path as the table's file name (a URL with a scheme alone reads as unset)."""
    return f"engine.runtime.faust.store.partitioned:{table}"


class KeyPartitionedStore(Store):
    """RocksDB (rocksdict) partitioned like the changelog: a key lives in its partition's db."""

    def _db_of(self, key: bytes) -> Any:
        return self._db_for_partition(partition_of(key.decode(), self._partitions()))

    def _partitions(self) -> int:
        return int(self.table.partitions or self.app.conf.topic_partitions)

    def _set(self, key: bytes, value: bytes | None) -> None:
        self._db_of(key).put(key, value)

    def _get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db_of(key).get(key)
        return value

    def _del(self, key: bytes) -> None:
        self._db_of(key).delete(key)

    def _contains(self, key: bytes) -> bool:
        return self._get(key) is not None


partitioned = KeyPartitionedStore  # the name the URL's (lower-cased) scheme ends with
