"""A table in local RocksDB (rocksdict in raw mode: keys and values are bytes on disk)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rocksdict import AccessType, Options, Rdict

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

    def items(self) -> Iterator[tuple[str, bytes]]:
        for k, v in self._db.items():  # raw mode: keys and values are bytes
            yield k.decode(), v  # type: ignore[union-attr]

    def close(self) -> None:
        self._db.close()
