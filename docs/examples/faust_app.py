"""A Faust app of one's own with Kairos mounted next to its agents (library mode).

    KAIROS_BROKER=kafka://127.0.0.1:9092 KAIROS_APP_ID=shop python docs/examples/faust_app.py \
        worker -l info

The app keeps its own settings (broker, store, web server); `install` declares the Kairos
agents, tables and timer on it, reading the Kairos settings (`KAIROS_*`, README) for the topics
and the rules. The app id must be the Kairos app id: the Kairos tables' changelogs, internal
topics and consumer group derive from it. Next to Kairos, the shop's own agent reads the
actions Kairos decides and sends one line per action to a topic of its own (`<actions topic>`
with `.audit` appended), counting them per channel in a table of its own.
"""

from __future__ import annotations

import asyncio

import faust
import orjson

from engine.config import Settings
from engine.runtime.faust import install
from engine.runtime.kafka import ensure_topics
from engine.sdk.ruleset import RuleSet

settings = Settings.from_env()
app = faust.App(settings.app_id, broker=settings.broker, store="rocksdb://",
                datadir=str(settings.data_dir / "shop"), topic_partitions=settings.partitions,
                web_host="127.0.0.1", web_bind="127.0.0.1", web_port=settings.web_port,
                consumer_auto_offset_reset="earliest",
                broker_session_timeout=settings.session_timeout, autodiscover=False)
install(app, settings, RuleSet.load(settings.rules_dir), health_prefix="/kairos")

actions = app.topic(settings.topic_actions, key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw")
audit = app.topic(f"{settings.topic_actions}.audit", key_type=bytes, value_type=bytes,
                  key_serializer="raw", value_serializer="raw")
per_channel = app.Table("actions-per-channel", default=int, partitions=settings.partitions)


@app.agent(actions)
async def audit_actions(stream: faust.StreamT[bytes]) -> None:
    """The shop's own agent: one audit line per action Kairos decided."""
    async for event in stream.events():
        action = orjson.loads(event.value)
        per_channel[action["channel"]] += 1
        await audit.send(key=event.key, value=orjson.dumps(
            {"action_id": action["action_id"], "channel": action["channel"],
             "seen_on_this_channel": per_channel[action["channel"]]}))


if __name__ == "__main__":
    asyncio.run(ensure_topics(settings))  # the Kairos topics, created when missing
    app.main()
