"""The Kafka clients a worker runs on, built from its Settings.

One producer (idempotent, and transactional under exactly-once) carries every record a worker
writes; one consumer in the application's group reads the inputs and both internal topics;
short-lived readers outside the group restore and tail the changelogs.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from engine.config import Settings
from engine.storage.changelog import partition_of

MAX_BATCH = 2000  # records per getmany: bounds the memory and the time a batch holds offsets


class Producer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    async def wait_acks(self, acks: list[asyncio.Future[Any]]) -> None:
        """Until every one of `acks` is in; raises the first error among them.

        One by one rather than `asyncio.gather`: most are in by the time a commit asks, and
        gather pays a callback and a loop turn for each (about 5 us an ack; 1.6 acks an event).
        """
        for ack in acks:
            if not ack.done():
                await ack
            ack.result()

    async def answer(self, topic: str) -> None:
        """One metadata round trip, for `topic` alone: the broker probe's question, raised
        on as `fetch_all_metadata` does when no broker answers. aiokafka has no public call
        for one topic's metadata; its client's `_metadata_update` is what it uses itself
        (the broker-fault tests of the integration suite run it against a real broker)."""
        if not await self.client._metadata_update(ClusterMetadata(), [topic]):
            raise KafkaError("no broker answered a metadata request")


def producer(settings: Settings, consumer: Any) -> Any:
    """The one producer; `consumer` is the group member whose offsets its transactions carry.
    Either client's offers the same calls (`send`, `wait_acks`, the transaction's)."""
    if settings.kafka_client == "confluent":
        from engine.runtime.kafka import confluent
        return confluent.Producer(settings, transactional_id(settings), consumer)
    return Producer(
        bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True, linger_ms=1,
        max_batch_size=256 * 1024, transactional_id=transactional_id(settings),
    )


def consumer(settings: Settings) -> Any:
    """The group member. Range assignment gives a worker the same partition numbers of every
    internal topic, so the steps of one key meet in one process."""
    if settings.kafka_client == "confluent":
        from engine.runtime.kafka import confluent
        return confluent.Consumer(settings, MAX_BATCH)
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap, group_id=settings.app_id, enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed",
        max_poll_records=MAX_BATCH, fetch_max_wait_ms=50,
        session_timeout_ms=int(settings.session_timeout * 1000),
        heartbeat_interval_ms=int(max(settings.session_timeout / 4, 0.5) * 1000),
        partition_assignment_strategy=(RangePartitionAssignor,),
    )


def changelog_reader(settings: Settings, max_poll_records: int | None = None) -> AIOKafkaConsumer:
    """A reader outside the group, for changelog partitions it assigns itself.

    "earliest" like the seeks its users make: aiokafka resets a freshly assigned partition on
    its own, and with "latest" that reset could land after a seek to the beginning and win,
    silently skipping the partition's whole history.
    """
    return AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                            isolation_level="read_committed", auto_offset_reset="earliest",
                            max_poll_records=max_poll_records)


def transactional_id(settings: Settings) -> str | None:
    """Stable per worker (its data directory), so a restarted worker fences its old self."""
    if settings.processing_guarantee != "exactly_once":
        return None
    path = settings.data_dir / "stream" / "worker-id"
    if not path.exists():
        path.write_text(uuid.uuid4().hex)
    return f"{settings.app_id}-{path.read_text().strip()}"


class OutputPartitions:
    """The producer's own partition choice for a key (murmur2), from a cache of partition
    counts rather than its per-record hashing."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.counts: dict[str, int] = {}  # output topic -> its partition count

    def of(self, topic: str, key: str) -> int | None:
        """None until the topic's metadata is known (the producer then decides)."""
        n = self.counts.get(topic)
        if n is None:
            known = self.producer.client.cluster.partitions_for_topic(topic)
            if not known:
                return None
            n = self.counts[topic] = len(known)
        return partition_of(key, n)

    def clear(self) -> None:
        """Forget the counts: a rebalance is a good moment to see new partitions."""
        self.counts.clear()
