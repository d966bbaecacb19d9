"""The Kairos tables as Faust tables, and the thin adapter the pipeline's steps see them through.

Each table holds raw bytes under raw byte keys (the records of the batch runtime's tables,
engine/storage/changelog.py). Faust names a table's changelog `<app id>-<name>-changelog`,
which is `engine.topics.changelog(app_id, name)` when the Faust app's id is the Kairos app id:
a deployment can move between the runtimes and keep its state. `use_partitioner=True` sends
each changelog record to its key's own partition (the producer's murmur2, as the batch runtime
does), whichever event wrote it; `store.KeyPartitionedStore` keeps the local copy there too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust

from engine.config import Settings
from engine.runtime.faust import store
from engine.runtime.timers import TimerIndex
from engine.storage import CachedItems, CachedStates, Caches
from engine.storage.changelog import partition_of
from engine.topics import TABLES, Table, changelog

__all__ = ["FaustTables", "TableStore"]


class TableStore:
    """A Faust table of bytes as the pipeline's `BytesStore` (str keys, encoded here)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self.table.get(key.encode())
        return value

    def __setitem__(self, key: str, value: bytes) -> None:
        self.table[key.encode()] = value

    def __delitem__(self, key: str) -> None:
        del self.table[key.encode()]


class FaustTables:
    """The tables declared on `app`, the contact states cached decoded over the contacts
    table (written back at the end of each batch, before its events are acknowledged), and
    the index of pending timers rebuilt from the states of the partitions assigned."""

    def __init__(self, app: faust.App, settings: Settings,
                 on_encoded: Callable[[int], None]) -> None:
        self.partitions = settings.partitions
        self.by_name: dict[Table, Any] = {
            t: app.Table(t, key_type=bytes, value_type=bytes, partitions=settings.partitions,
                         use_partitioner=True, store=store.url(t),
                         options={"driver": "rocksdict"})
            for t in TABLES}
        for t, table in self.by_name.items():
            if table.changelog_topic.get_topic_name() != changelog(settings.app_id, t):
                raise ValueError(f"the Faust app's id must be the Kairos app id "
                                 f"({settings.app_id!r}): table {t} would log to "
                                 f"{table.changelog_topic.get_topic_name()}")
        self.identity = TableStore(self.by_name["identity"])
        self.contacts = TableStore(self.by_name["contacts"])
        self.items = TableStore(self.by_name["items"])
        self.states = CachedStates(self.contacts, capacity=settings.state_cache, batch=1 << 62,
                                   on_encoded=on_encoded)
        self.item_records = CachedItems(self.items, capacity=settings.state_cache, batch=1 << 62)
        self.timers = TimerIndex()

    @property
    def cached(self) -> Caches:
        """Both decoded caches, written back and forgotten together."""
        return Caches(self.states, self.item_records)

    def partition_of(self, key: str) -> int:
        return partition_of(key, self.partitions)

    def index_timers(self, partitions: set[int]) -> None:
        """Timers survive restarts and move with partitions: index those of `partitions`."""
        items = ((key.decode(), raw) for key, raw in self.by_name["contacts"].items())
        self.timers.track_stored(items, partitions, self.partition_of)
