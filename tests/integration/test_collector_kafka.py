"""The collector in front of a real broker: good calls on the input topic, refused items on the
dead-letter topic, both keyed as the engine partitions them and acknowledged before the 200."""

from __future__ import annotations

import asyncio
import base64
import uuid

import orjson
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaConsumer

from connectors.collector import CollectorConfig, collector_app
from connectors.sinks import KafkaSink
from engine.config import Settings
from engine.model import deadletter

KEY = "wk_kafka"


async def records(bootstrap: str, topic: str, n: int) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of the first `n` records of `topic`, read from its start."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    got: list[tuple[bytes | None, bytes]] = []
    try:
        async with asyncio.timeout(60):
            while len(got) < n:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    got.extend((r.key, r.value) for r in batch if r.value is not None)
    finally:
        await consumer.stop()
    return got


def test_refused_items_go_to_the_dead_letter_topic_keyed_as_they_would_have_been(
    kafka_bootstrap: str,
) -> None:
    run = uuid.uuid4().hex[:8]
    settings = Settings(broker=f"kafka://{kafka_bootstrap}", topic_clickstream=f"cs-{run}",
                        topic_dead_letters=f"dl-{run}")
    batch = {"batch": [
        {"type": "track", "messageId": "k1", "userId": "ku1", "event": "Product Viewed"},
        {"type": "track", "messageId": "k2", "userId": "ku2"},  # no event name
        {"type": "identify", "messageId": "k3", "anonymousId": "anon-3", "traits": {}},
    ]}

    async def go() -> tuple[int, dict[str, object]]:
        sink = KafkaSink(settings)
        await sink.start()
        server = TestServer(collector_app(sink, CollectorConfig(frozenset({KEY}))),
                            host="127.0.0.1")
        await server.start_server()
        auth = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
        try:
            async with ClientSession() as s, s.post(
                    server.make_url("/v1/batch"), data=orjson.dumps(batch),
                    headers={"Authorization": auth, "Content-Type": "application/json"}) as r:
                return r.status, orjson.loads(await r.read())
        finally:
            await server.close()
            await sink.stop()

    status, answer = asyncio.run(go())
    assert (status, answer["accepted"]) == (200, 2)
    good = asyncio.run(records(kafka_bootstrap, settings.topic_clickstream, 2))
    assert sorted((k, orjson.loads(v)["messageId"]) for k, v in good) == [
        (b"anon-3", "k3"), (b"ku1", "k1")]
    [(key, value)] = asyncio.run(records(kafka_bootstrap, settings.topic_dead_letters, 1))
    letter = deadletter.decode(value)
    assert key == b"ku2" and letter.key == "ku2"
    assert letter.topic == settings.topic_clickstream and letter.source == "clickstream"
    assert letter.reason.endswith("- at `$.batch[1].event`")
    original = letter.original()
    assert original is not None and orjson.loads(original)["messageId"] == "k2"
