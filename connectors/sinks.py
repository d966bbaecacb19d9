"""Where the collector puts what it accepted: the embedded engine, or Kafka's input topics.

Items the collector refused go to the same place's dead letters, named by the topic and key
they would have had, so a repaired one can be replayed into the partition it belongs to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from connectors.intake import Accepted, Refused, Unavailable
from engine.config import Settings
from engine.model import deadletter
from engine.model.events import Source
from engine.runtime.embedded import EmbeddedRuntime
from engine.topics import DEFAULT_INPUTS


class EmbeddedSink:
    """Feeds the in-process engine; deciding is synchronous, so acceptance is decision."""

    def __init__(self, runtime: EmbeddedRuntime) -> None:
        self.runtime = runtime

    async def accept(self, events: Sequence[Accepted], refused: Sequence[Refused] = ()) -> None:
        for r in refused:
            self.runtime.dead_letter(r.letter(DEFAULT_INPUTS[r.source]))
        for e in events:
            self.runtime.submit(e.value, e.source)


class KafkaSink:
    """Produces to the input topics, keyed by the best identifier, idempotent, `acks=all`;
    returns only when the broker acknowledged every event and dead letter, raises
    `Unavailable` otherwise."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self.topics: dict[Source, str] = settings.topics.sources
        self.dead_letters = settings.topic_dead_letters
        self.timeout = timeout
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True,
            linger_ms=2, request_timeout_ms=int(timeout * 1000),
        )

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def accept(self, events: Sequence[Accepted], refused: Sequence[Refused] = ()) -> None:
        records = [(self.topics[e.source], e.key, e.value) for e in events] + [
            (self.dead_letters, r.key, deadletter.encode(r.letter(self.topics[r.source])))
            for r in refused]
        try:
            futures = [await self.producer.send(topic, value, key=key.encode() or None)
                       for topic, key, value in records]
            await asyncio.wait_for(asyncio.gather(*futures), self.timeout)
        except (KafkaError, TimeoutError) as exc:
            raise Unavailable(f"broker did not acknowledge: {type(exc).__name__}") from exc
