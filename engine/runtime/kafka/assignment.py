"""Rebalances: what a worker does when the group gives it partitions or takes them away.

Partitions taken away are committed first (their next owner starts where this worker ended),
then forgotten: ownership, their timers, the cached states. Partitions given are restored
from their changelogs (from the last checkpoint) before anything is decided for them, their
timers indexed, and only then the worker reports ready: the gate on `/ready`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from engine.config import Settings
from engine.runtime.kafka import clients
from engine.runtime.kafka.clients import OutputPartitions
from engine.runtime.kafka.commits import Commits
from engine.runtime.kafka.ownership import Ownership
from engine.runtime.kafka.tables import Tables
from engine.topics import Table

log = logging.getLogger("kairos.worker")


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer, lock: asyncio.Lock,
                 tables: Tables, ownership: Ownership, commits: Commits,
                 output_partitions: OutputPartitions) -> None:
        self.settings, self.consumer, self.lock = settings, consumer, lock
        self.tables, self.ownership, self.commits = tables, ownership, commits
        self.output_partitions = output_partitions

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:
            gone = self.ownership.of_internal(revoked)
            if not gone:
                return
            with contextlib.suppress(Exception):
                await self.commits.commit()
            self.ownership.revoke(gone)
            self.tables.timers.drop_partitions(gone.get("contacts", set()))
            self.tables.cached.clear()  # their next owner changes them now

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self.lock:
            started = time.monotonic()
            self.output_partitions.clear()
            new = self.ownership.of_internal(assigned)
            for table, ps in new.items():
                await restore(self.settings, self.tables, table, ps)
                self.ownership.own(table, ps)
            self.tables.index_timers(new.get("contacts", set()))
            await self.ownership.start_catch_up(new, self.consumer)
            self.ownership.ready = True
            self.ownership.recovery_seconds = time.monotonic() - started
            log.info("Ready: assigned %s; tables restored in %.2fs; %d timers pending",
                     sorted((tp.topic, tp.partition) for tp in assigned),
                     self.ownership.recovery_seconds, len(self.tables.timers))


async def restore(settings: Settings, tables: Tables, table: Table, partitions: set[int]) -> None:
    """Read the table's changelog partitions from the last checkpoint to their end."""
    store, checkpoints = tables.by_name[table], tables.checkpoints
    tps = [TopicPartition(store.topic, p) for p in partitions]
    reader = clients.changelog_reader(settings, max_poll_records=5000)
    await reader.start()
    try:
        reader.assign(tps)
        ends = await reader.end_offsets(tps)
        pending = set()
        for tp in tps:
            start = checkpoints.get(tp)
            if start is None or start > ends[tp]:  # never read, or a recreated topic
                await reader.seek_to_beginning(tp)
            else:
                reader.seek(tp, start)
            if ends[tp] > (start or 0):
                pending.add(tp)
        n = 0
        while pending:
            for records in (await reader.getmany(*pending, timeout_ms=500)).values():
                for r in records:
                    store.apply(r.key, r.value)
                n += len(records)
            for tp in list(pending):
                if await reader.position(tp) >= ends[tp]:
                    pending.discard(tp)
        for tp in tps:
            checkpoints.set(tp, ends[tp])
        checkpoints.save()
        if n:
            log.info("restored %d %s records from %s", n, table, store.topic)
    finally:
        await reader.stop()
