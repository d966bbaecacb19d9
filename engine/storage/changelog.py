"""Tables that live in local RocksDB and on compacted changelog topics, as the worker keeps them.

A table's writes reach its changelog first and the local RocksDB only once the broker has
acknowledged them; a checkpoint per changelog partition says how far the local copy reflects it,
so a restart or a takeover reads only what changed since.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

from engine.storage.rocksdb import RocksStore


@lru_cache(maxsize=1 << 17)
def partition_of(key: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2), so in-process routing agrees with the topics."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


class Changelogged:
    """A RocksDB table whose writes become records on its compacted changelog topic.

    Writes wait in `pending` (reads see them) until their changelog records are sent, then in
    `sent` until the broker acknowledged them: the local table never holds what its changelog
    does not, so whichever worker restores a partition next rebuilds exactly what this one had.
    """

    def __init__(self, path: Path, topic: str) -> None:
        self.db = RocksStore(path)
        self.topic = topic
        self.pending: dict[str, bytes | None] = {}  # the last write of each key since a send
        self.sent: list[dict[str, bytes | None]] = []  # sent, not yet acknowledged; oldest first

    def get(self, key: str) -> bytes | None:
        if key in self.pending:
            return self.pending[key]
        for writes in reversed(self.sent):
            if key in writes:
                return writes[key]
        return self.db.get(key)

    def __setitem__(self, key: str, value: bytes) -> None:
        self.pending[key] = value

    def __delitem__(self, key: str) -> None:
        self.pending[key] = None  # a tombstone on the changelog

    def take_pending(self) -> dict[str, bytes | None]:
        """The writes to send now; they stay readable until `persist` is given them back."""
        writes, self.pending = self.pending, {}
        self.sent.append(writes)
        return writes

    def persist(self, writes: dict[str, bytes | None]) -> None:
        """Those writes were acknowledged on the changelog: keep them locally too."""
        self.db.write(writes)
        self.sent = [w for w in self.sent if w is not writes]

    def apply(self, key: bytes, value: bytes | None) -> None:
        """A changelog record being restored."""
        self._write(key.decode(), value)

    def _write(self, key: str, value: bytes | None) -> None:
        if value is None:
            with contextlib.suppress(KeyError):
                del self.db[key]
        else:
            self.db[key] = value


@dataclass
class Checkpoints:
    """Per changelog partition, the offset up to which the local table reflects it."""

    path: Path
    offsets: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Checkpoints:
        try:
            return cls(path, json.loads(path.read_text()))
        except (OSError, ValueError):
            return cls(path)

    def get(self, tp: TopicPartition) -> int | None:
        return self.offsets.get(f"{tp.topic}:{tp.partition}")

    def set(self, tp: TopicPartition, offset: int) -> None:
        self.offsets[f"{tp.topic}:{tp.partition}"] = offset

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.offsets))
        os.replace(tmp, self.path)
