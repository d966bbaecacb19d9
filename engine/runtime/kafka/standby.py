"""Warm standbys (`KAIROS_STANDBY_REPLICAS=1`): a worker also tails the changelog partitions
other workers own into its local tables, so taking one over restores only what changed since."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from engine.config import Settings
from engine.runtime.kafka import clients
from engine.runtime.kafka.clients import MAX_BATCH
from engine.runtime.kafka.ownership import Ownership
from engine.runtime.kafka.tables import Tables


async def keep_standbys(settings: Settings, tables: Tables, ownership: Ownership,
                        lock: asyncio.Lock) -> None:
    """Until cancelled. Records are applied under the worker's lock, and never to a partition
    this worker owns by then: the assignment's restore reads those."""
    reader = clients.changelog_reader(settings)
    await reader.start()
    following: set[TopicPartition] = set()
    by_topic = {t.topic: (name, t) for name, t in tables.by_name.items()}
    try:
        while True:
            wanted = {TopicPartition(t.topic, p) for name, t in tables.by_name.items()
                      for p in range(settings.partitions) if p not in ownership.owned[name]}
            if not ownership.ready:  # a rebalance is moving partitions: wait for it
                wanted = set()
            if wanted != following:
                following = wanted
                reader.assign(sorted(wanted))
                for tp in wanted:
                    start = tables.checkpoints.get(tp)
                    if start is None:
                        await reader.seek_to_beginning(tp)
                    else:
                        reader.seek(tp, start)
            if not following:
                await asyncio.sleep(1)
                continue
            batch = await reader.getmany(timeout_ms=1000, max_records=MAX_BATCH)
            async with lock:
                for tp, records in batch.items():
                    name, table = by_topic[tp.topic]
                    if tp.partition in ownership.owned[name]:
                        continue
                    for r in records:
                        table.apply(r.key, r.value)
                    tables.checkpoints.set(tp, records[-1].offset + 1)
                if batch:
                    tables.checkpoints.save()
    finally:
        await reader.stop()
