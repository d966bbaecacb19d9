"""Key-value stores for the embedded runtime: RocksDB on disk (rocksdict) or a dict in memory.

Both satisfy `engine.pipeline.Store`, as a Faust Table does in the Kafka runtime.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rocksdict import Options, Rdict


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
