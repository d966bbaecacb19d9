"""The console's own copy of a worker group's table changelogs, in local RocksDB.

The contact page looks a contact up on every request: scanning the changelogs each time
(`kairos explain --kafka`) takes seconds per lookup. Instead one reader outside any group,
assigned every partition of both changelogs, copies them into a RocksDB per table and then
follows them; lookups are local reads. The offset reached on each partition is kept in the
same database as the records, so a restarted console reads only what changed since.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from engine.config import Settings
from engine.ops.explain import Lookup
from engine.runtime.kafka.clients import changelog_reader
from engine.storage import RocksStore
from engine.topics import Table

__all__ = ["ChangelogCopy"]

log = logging.getLogger("kairos.console")
OFFSET_PREFIX = "\x00offset:"  # never a table key: identifiers and contact ids are printable
DISCOVER_EVERY = 10.0  # seconds between two looks for new changelog partitions
POLL_MS = 500
COPIED: tuple[Table, ...] = ("identity", "contacts")  # what the console reads (not `items`)


class ChangelogCopy:
    """Both tables, copied from their changelogs into `root/<table>` and kept up to date."""

    def __init__(self, settings: Settings, root: Path) -> None:
        self.settings = settings
        self.stores = {t: RocksStore(root / t) for t in COPIED}
        self.tables = {topic: t for t, topic in settings.topics.changelogs.items()
                       if t in COPIED}
        self.applied = 0  # changelog records written to the copy since this start
        self._positions: dict[TopicPartition, int] = {}  # next offset to read, per partition
        self._started: dict[TopicPartition, int] = {}  # where this start began on each
        self._targets: dict[TopicPartition, int] = {}  # its end when first seen: caught up at it
        self._discovered = False  # the changelogs' partitions were looked up once

    def lookup(self, table: Table) -> Lookup:
        store = self.stores[table]
        return lambda key: None if key.startswith(OFFSET_PREFIX) else store.get(key)

    def caught_up(self) -> bool:
        """Every partition known has been read up to where it ended when first seen."""
        return self._discovered and all(self._positions[tp] >= end
                                        for tp, end in self._targets.items())

    def progress(self) -> float:
        """How much of what this start had to read is read, from 0 to 1."""
        if not self._discovered:
            return 0.0
        total = sum(end - self._started[tp] for tp, end in self._targets.items())
        done = sum(min(self._positions[tp], end) - self._started[tp]
                   for tp, end in self._targets.items())
        return 1.0 if total <= 0 else done / total

    def close(self) -> None:
        for store in self.stores.values():
            store.close()

    async def follow(self) -> None:
        """Copy and follow until cancelled, from the positions reached, looking for new
        partitions now and then; a broker fault raises (the caller starts it over)."""
        reader = changelog_reader(self.settings)
        await reader.start()
        try:
            fresh, next_look = True, 0.0
            loop = asyncio.get_running_loop()
            while True:
                if loop.time() >= next_look:
                    await self._assign(reader, await self._partitions(), fresh)
                    fresh, next_look = False, loop.time() + DISCOVER_EVERY
                if not self._positions:
                    await asyncio.sleep(POLL_MS / 1000)
                    continue
                batch = await reader.getmany(timeout_ms=POLL_MS)
                for tp, records in batch.items():
                    self._apply(tp, [(r.key, r.value) for r in records])
                for tp in self._positions:  # past transaction markers too, not only records
                    self._advance(tp, await reader.position(tp))
        finally:
            await reader.stop()

    async def _partitions(self) -> set[TopicPartition]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.bootstrap)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            present = sorted(t for t in self.tables if t in existing)
            described = await admin.describe_topics(present) if present else []
        finally:
            await admin.close()
        return {TopicPartition(d["topic"], p["partition"])
                for d in described for p in d.get("partitions", ())}

    async def _assign(self, reader: AIOKafkaConsumer, found: set[TopicPartition],
                      fresh: bool) -> None:
        """Read `found` too: a new partition from its stored offset, else from its start."""
        new = found - set(self._positions)
        if new:
            ends = await reader.end_offsets(sorted(new))
            for tp in new:
                stored = self.stores[self.tables[tp.topic]].get(_offset_key(tp.partition))
                self._positions[tp] = self._started[tp] = int(stored) if stored else 0
                self._targets[tp] = ends[tp]
                log.info("console copy of %s[%d]: from offset %d to %d", tp.topic,
                         tp.partition, self._positions[tp], ends[tp])
        self._discovered = True
        if new or fresh:
            reader.assign(sorted(self._positions))
            for tp, position in self._positions.items():  # assign() forgets every position
                reader.seek(tp, position)

    def _apply(self, tp: TopicPartition, records: list[tuple[bytes, bytes | None]]) -> None:
        """Changelog records into the copy: a value replaces, a tombstone deletes."""
        store = self.stores[self.tables[tp.topic]]
        for key, value in records:
            name = key.decode()
            if value is None:
                with contextlib.suppress(KeyError):
                    del store[name]
            else:
                store[name] = value
        self.applied += len(records)

    def _advance(self, tp: TopicPartition, position: int) -> None:
        if position != self._positions[tp]:
            self._positions[tp] = position
            self.stores[self.tables[tp.topic]][_offset_key(tp.partition)] = str(position).encode()


def _offset_key(partition: int) -> str:
    return f"{OFFSET_PREFIX}{partition}"
