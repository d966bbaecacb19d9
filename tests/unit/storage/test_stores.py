"""The store contract, over every backend: a dict, a local RocksDB, a changelogged RocksDB.

The keyed steps only know `BytesStore` and `StateStore`; whatever table a runtime hands them
must read back what was written, forget what was deleted, and (under `CachedStates`) survive
being written out and read again. A new backend joins `BACKENDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.model.state import ContactState
from engine.storage import BytesStore, CachedStates, MemoryStore, RocksStore
from engine.storage.changelog import Changelogged

BACKENDS: dict[str, Callable[[Path], BytesStore]] = {
    "memory": lambda path: MemoryStore(),
    "rocksdb": lambda path: RocksStore(path / "t"),
    "changelogged": lambda path: Changelogged(path / "t", "app-contacts-changelog"),
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BytesStore]:
    made = BACKENDS[request.param](tmp_path)
    yield made
    db = getattr(made, "db", made)
    db.close()  # type: ignore[attr-defined]


def test_a_store_reads_back_what_was_written_and_forgets_what_was_deleted(
    store: BytesStore,
) -> None:
    assert store.get("c1") is None
    store["c1"] = b"one"
    store["c1"] = b"two"
    store["c2"] = b"\x00\xff binary"
    assert store.get("c1") == b"two" and store.get("c2") == b"\x00\xff binary"
    del store["c1"]
    assert store.get("c1") is None and store.get("c2") == b"\x00\xff binary"


def test_contact_states_survive_a_write_out_and_a_cold_read(store: BytesStore) -> None:
    sizes: list[int] = []
    states = CachedStates(store, batch=1 << 30, on_encoded=sizes.append)
    ada = ContactState(contact_id="c1", traits={"email": "ada@example.com"})
    states.save("c1", ada)
    states.save("gone", ContactState(contact_id="gone"))
    states.delete("gone")
    states.clear()  # written out, then forgotten: the next read decodes from the store
    again = states.load("c1")
    assert again is not None and again.traits == {"email": "ada@example.com"}
    assert states.load("gone") is None and store.get("gone") is None
    assert len(sizes) == 1 and sizes[0] == len(store.get("c1") or b"")


def test_a_changelogged_write_is_readable_before_it_is_acknowledged_and_kept_after(
    tmp_path: Path,
) -> None:
    table = Changelogged(tmp_path / "t", "app-contacts-changelog")
    table["c1"] = b"v1"
    sent = table.take_pending()
    assert sent == {"c1": b"v1"} and table.get("c1") == b"v1"  # in flight, still readable
    assert table.db.get("c1") is None  # the local copy never runs ahead of its changelog
    table.persist(sent)
    assert table.db.get("c1") == b"v1" and table.sent == []
    table.db.close()


def test_an_acknowledged_commit_lands_puts_and_tombstones_together(tmp_path: Path) -> None:
    table = Changelogged(tmp_path / "t", "app-contacts-changelog")
    table["kept"], table["dropped"] = b"old", b"x"
    table.persist(table.take_pending())
    table["kept"] = b"new"
    del table["dropped"]
    del table["never-written"]  # a tombstone for a key the local table never held
    table.persist(table.take_pending())
    assert table.db.get("kept") == b"new" and table.db.get("dropped") is None
    assert table.db.get("never-written") is None and table.sent == []
    table.db.close()
