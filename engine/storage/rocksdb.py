"""A table in local RocksDB (rocksdict in raw mode: keys and values are bytes on disk)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from rocksdict import AccessType, Options, Rdict, WriteBatch

__all__ = ["RocksStore"]


class RocksStore:
    """A `BytesStore` on disk, keyed by str.

    `read_only` opens beside a running writer (RocksDB allows one): `kairos explain` and
    `kairos contacts show` read an embedded runtime's tables while it runs.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        if read_only:
            self._db = Rdict(str(path), Options(raw_mode=True),
                             access_type=AccessType.read_only())
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = Rdict(str(path), Options(raw_mode=True))

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self._db.get(key.encode())
        return value

    def __setitem__(self, key: str, value: bytes) -> None:
        self._db[key.encode()] = value

    def __delitem__(self, key: str) -> None:
        del self._db[key.encode()]

    def write(self, writes: Mapping[str, bytes | None]) -> None:
        """Puts, and deletes where the value is None, in one RocksDB write: a commit's changes
        cost about half of what one write each does (the write path runs once)."""
        batch = WriteBatch(raw_mode=True)
        for key, value in writes.items():
            if value is None:
                batch.delete(key.encode())
            else:
                batch.put(key.encode(), value)
        self._db.write(batch)

    def items(self) -> Iterator[tuple[str, bytes]]:
        for k, v in self._db.items():  # raw mode: keys and values are bytes
            yield k.decode(), v  # type: ignore[union-attr]

    def close(self) -> None:
        self._db.close()
