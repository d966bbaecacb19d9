"""The identity mirror behind visitor reads on the Kafka collector.

The collector answers a browser by its `anonymousId` or `userId`, but only the workers hold the
identity table. Its compacted changelog topic carries every change to it (identifier -> contact
id, a tombstone when an identifier is unlinked or erased), so `kairos connect web` follows it and
keeps the `anon:` and `user:` records in Redis under `visitor_key`: emails and handles never go
there. Setting and deleting are idempotent, so offsets are committed after each applied batch
and a restart re-applies at most one batch. Merges move records to the surviving contact and
erasures delete them through the same changelog, so the mirror follows both.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from engine.config import Settings
from engine.keys import visitor_key

__all__ = ["MIRRORED", "mirror_identities"]

log = logging.getLogger("kairos.connect")
MIRRORED = ("anon:", "user:")  # the identifiers a browser names itself by


async def mirror_identities(settings: Settings, redis: Redis, stop: asyncio.Event) -> None:
    """Apply the identity changelog to Redis until `stop` is set."""
    consumer = AIOKafkaConsumer(
        settings.topics.changelogs["identity"], bootstrap_servers=settings.bootstrap,
        group_id=f"{settings.app_id}-connect-web-visitors", enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed", max_poll_records=1000,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            pipe = redis.pipeline(transaction=False)
            changes = 0
            for record in (r for rs in batch.values() for r in rs):
                identifier = (record.key or b"").decode("utf-8", "replace")
                if not identifier.startswith(MIRRORED):
                    continue
                if record.value is None:
                    pipe.delete(visitor_key(identifier))
                else:
                    pipe.set(visitor_key(identifier), record.value)
                changes += 1
            if changes:
                await pipe.execute()
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()
