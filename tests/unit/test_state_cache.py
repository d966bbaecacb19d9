"""The decoded-record caches stay within their capacity, never lose a write when they evict, and
spare a busy item a decode per product view."""

from __future__ import annotations

from engine.config import Settings
from engine.core.items import MAX_INTERESTED
from engine.model.catalogue import decode_record
from engine.model.state import ContactState
from engine.storage import CachedItems, CachedStates, MemoryStore
from engine.testing import Scenario


def test_a_full_cache_writes_back_what_it_drops_and_reads_it_again() -> None:
    store = MemoryStore()
    states = CachedStates(store, capacity=10, batch=1 << 62)
    for i in range(35):
        st = ContactState(contact_id=f"c{i}")
        st.bump("page", float(i))
        states.save(f"c{i}", st)
        assert states.load(f"c{i}") is st
        for j in range(0, i, 7):  # reads of older contacts come back from the store when evicted
            loaded = states.load(f"c{j}")
            assert loaded is not None and loaded.count("page") == 1
            assert loaded.tally("page").first == float(j)  # type: ignore[union-attr]
        assert len(states._cache) <= 11
    states.flush()
    assert sorted(store) == sorted(f"c{i}" for i in range(35))


def test_the_worker_cache_size_is_a_setting() -> None:
    assert Settings.from_env({"KAIROS_STATE_CACHE": "5000"}).state_cache == 5000
    assert Settings().state_cache == 100_000


def test_each_state_written_back_is_measured_once_as_encoded() -> None:
    store, sizes = MemoryStore(), []  # type: MemoryStore, list[int]
    states = CachedStates(store, batch=2, on_encoded=sizes.append)
    for i in range(3):
        states.save(f"c{i}", ContactState(contact_id=f"c{i}"))
    assert sizes == [len(store["c0"]), len(store["c1"])]  # the batch of two was written
    states.flush()
    assert sorted(sizes) == sorted(len(v) for v in store.values())
    states.flush()  # nothing changed since: nothing encoded, nothing measured
    assert len(sizes) == 3


def test_the_state_size_histogram_has_observations_after_traffic() -> None:
    s = Scenario()
    for user in ("u1", "u2"):
        s.identify(user, email=f"{user}@example.com")
        s.track(user, "Product Added", properties={"product_id": "sku-1"})
    s.runtime.flush()
    registry = s.runtime.pipeline.metrics.registry
    count = registry.get_sample_value("kairos_contact_state_bytes_count")
    total = registry.get_sample_value("kairos_contact_state_bytes_sum")
    assert count is not None and count >= 2
    assert total is not None and total > 0


class _CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        self.reads += 1
        return super().get(key, default)


def test_a_busy_items_index_is_read_from_its_table_once_and_written_at_flush() -> None:
    store = _CountingStore()
    s = Scenario()
    s.runtime.item_records = CachedItems(store, batch=1 << 62)
    for i in range(MAX_INTERESTED + 50):  # past the cap: the index keeps the newest only
        s.track(f"u{i}", "Product Viewed", properties={"product_id": "sku-1"})
        s.advance(minutes=1)
    assert store.reads == 1  # the first view found nothing; every later one read the cache
    assert store == {}  # nothing written before a flush
    s.runtime.flush()
    record = decode_record(store["sku-1"])
    assert len(record.interested) == MAX_INTERESTED
    assert all(set(seen) == {"viewed"} for seen in record.interested.values())
