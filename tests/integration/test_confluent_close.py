"""The librdkafka consumer leaves its group without running the runtime's rebalance listener,
as aiokafka's does: librdkafka revokes the assignment inside `close`, and a listener run there
would commit for a worker that is stopping or was abandoned after a failed commit."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import TopicPartition

from engine.config import Settings
from engine.runtime.kafka.confluent import Consumer
from engine.testing.kafka import produce

pytestmark = pytest.mark.kafka


class Listener:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def on_partitions_assigned(self, tps: list[TopicPartition]) -> None:
        self.calls.append("assigned")

    async def on_partitions_revoked(self, tps: list[TopicPartition]) -> None:
        self.calls.append("revoked")


def test_closing_the_consumer_does_not_run_the_listener(kafka_bootstrap: str) -> None:
    topic = f"close-{uuid.uuid4().hex[:8]}"
    produce(kafka_bootstrap, [(topic, b"k", b"v")])

    async def scenario() -> list[str]:
        settings = Settings.from_env({"KAIROS_BROKER": f"kafka://{kafka_bootstrap}",
                                      "KAIROS_APP_ID": topic})
        consumer, listener = Consumer(settings, 100), Listener()
        await consumer.start()
        consumer.subscribe([topic], listener)
        deadline = time.monotonic() + 60
        got = 0
        while got == 0 and time.monotonic() < deadline:
            got += sum(len(rs) for rs in (await consumer.getmany(500)).values())
        assert got == 1 and listener.calls == ["assigned"]
        await consumer.stop()
        return listener.calls

    assert asyncio.run(scenario()) == ["assigned"]
