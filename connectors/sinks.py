"""Where the collector puts what it accepted: the embedded engine, or Kafka's input topics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from connectors.collector import Accepted, Unavailable
from engine.config import Settings
from engine.model.events import Source
from engine.runtime.embedded import EmbeddedRuntime


class EmbeddedSink:
    """Feeds the in-process engine; deciding is synchronous, so acceptance is decision."""

    def __init__(self, runtime: EmbeddedRuntime) -> None:
        self.runtime = runtime

    async def accept(self, events: Sequence[Accepted]) -> None:
        for e in events:
            self.runtime.submit(e.value, e.source)


class KafkaSink:
    """Produces to the input topics, keyed by the best identifier, idempotent, `acks=all`;
    returns only when the broker acknowledged every event, raises `Unavailable` otherwise."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self.topics: dict[Source, str] = settings.topics.sources
        self.timeout = timeout
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True,
            linger_ms=2, request_timeout_ms=int(timeout * 1000),
        )

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def accept(self, events: Sequence[Accepted]) -> None:
        try:
            futures = [
                await self.producer.send(self.topics[e.source], e.value, key=e.key.encode() or None)
                for e in events
            ]
            await asyncio.wait_for(asyncio.gather(*futures), self.timeout)
        except (KafkaError, TimeoutError) as exc:
            raise Unavailable(f"broker did not acknowledge: {type(exc).__name__}") from exc
