"""The Faust baseline of the `faust` scenario: the first version's way, one agent per input
topic, a table write and a send per message (no batching, no in-process hops).

    KAIROS_BROKER=kafka://127.0.0.1:9092 KAIROS_APP_ID=naive python -m load_tests.naive_faust \
        worker -l info

Each event is counted in a Faust table under its key and answered with one record on the
actions topic: the per-message cost of Faust's consumer path, table and producer, with none of
the engine's work. Faust's worker logs "Ready" once started, which the bench waits for.
"""

from __future__ import annotations

import faust

from engine.config import Settings

settings = Settings.from_env()
app = faust.App(settings.app_id, broker=settings.broker, store="rocksdb://",
                datadir=str(settings.data_dir / "naive"), topic_partitions=settings.partitions,
                web_host="127.0.0.1", web_bind="127.0.0.1", web_port=settings.web_port,
                consumer_auto_offset_reset="earliest", autodiscover=False)
seen = app.Table("seen", key_type=bytes, value_type=bytes, partitions=settings.partitions)
out = app.topic(settings.topic_actions, key_type=bytes, value_type=bytes,
                key_serializer="raw", value_serializer="raw")


def _agent_for(name: str) -> None:
    topic = app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw")

    async def per_message(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            key = event.key or b""
            seen[key] = str(int(seen.get(key) or b"0") + 1).encode()
            await out.send(key=key, value=event.value)

    app.agent(topic, name=f"naive-{name}")(per_message)


for name in (settings.topic_clickstream, settings.topic_email, settings.topic_social):
    _agent_for(name)


if __name__ == "__main__":
    app.main()
