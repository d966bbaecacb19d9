"""Whole Kafka records for tests that check keys, headers, partitions and timestamps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

Headers = list[tuple[str, bytes | None]]


def send_records(bootstrap: str,
                 records: Iterable[tuple[str, bytes | None, bytes | None, Headers, int | None]]
                 ) -> list[Any]:
    """Send (topic, key, value, headers, partition) records in order; their metadata back."""

    async def go() -> list[Any]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            acks = [await producer.send(t, value=v, key=k, headers=h, partition=p)
                    for t, k, v, h, p in records]
            return list(await asyncio.gather(*acks))
        finally:
            await producer.stop()

    return asyncio.run(go())


def read_records(bootstrap: str, topic: str, until: Callable[[list[Any]], bool],
                 timeout: float = 60.0) -> list[Any]:
    """Committed records of `topic` from its start until `until(records)` or the timeout."""

    async def go() -> list[Any]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                    auto_offset_reset="earliest",
                                    isolation_level="read_committed")
        await consumer.start()
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and not until(found):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found.extend(records)
        finally:
            await consumer.stop()
        return found

    return asyncio.run(go())
