"""A worker's local state: what it keeps on disk and in memory for the partitions it owns.

One RocksDB per table with its changelog (`engine/storage/changelog.py`), the decoded contact
states cached over the contacts table and written out at each commit, the changelog
checkpoints (how far each local table has read its changelog partitions), and the index of
pending timers rebuilt from the states.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.config import Settings
from engine.runtime.timers import TimerIndex
from engine.storage import CachedItems, CachedStates, Caches
from engine.storage.changelog import Changelogged, Checkpoints, partition_of
from engine.topics import Table


class Tables:
    def __init__(self, settings: Settings, on_encoded: Callable[[int], None]) -> None:
        self.partitions = settings.partitions
        root = settings.data_dir / "stream"
        root.mkdir(parents=True, exist_ok=True)
        self.by_name: dict[Table, Changelogged] = {
            t: Changelogged(root / t, topic) for t, topic in settings.topics.changelogs.items()}
        self.identity, self.contacts = self.by_name["identity"], self.by_name["contacts"]
        self.items = self.by_name["items"]
        # Written once per commit (RocksDB + a changelog record per changed contact).
        self.states = CachedStates(self.contacts, capacity=settings.state_cache, batch=1 << 62,
                                   on_encoded=on_encoded)
        self.item_records = CachedItems(self.items, capacity=settings.state_cache, batch=1 << 62)
        self.checkpoints = Checkpoints.load(root / "checkpoints.json")
        self.timers = TimerIndex()

    @property
    def cached(self) -> Caches:
        """Both decoded caches, written back and forgotten together."""
        return Caches(self.states, self.item_records)

    def partition_of(self, key: str) -> int:
        return partition_of(key, self.partitions)

    def index_timers(self, partitions: set[int]) -> None:
        """Timers survive restarts and move with partitions: index those of `partitions`."""
        self.timers.track_stored(self.contacts.db.items(), partitions, self.partition_of)

    def close(self) -> None:
        for t in self.by_name.values():
            t.db.close()
