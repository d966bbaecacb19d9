"""The decoded-state cache stays within its capacity and never loses a write when it evicts."""

from __future__ import annotations

from engine.config import Settings
from engine.model.state import ContactState
from engine.storage import CachedStates, MemoryStore
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
