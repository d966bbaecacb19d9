"""The Faust baseline of the `faust` scenario: the first version of Kairos on Faust, the
pipeline's three keyed steps as three naive agents, one message at a time.

    KAIROS_BROKER=kafka://127.0.0.1:9092 KAIROS_APP_ID=naive python -m load_tests.naive_faust \
        worker -l info

`ingest` reads the input topics, `identity`, `contacts` and `items` the internal topics of
their step (`<app>-identity`, `<app>-contacts`, `<app>-items`). Each message runs exactly one
step of `Pipeline.drain` (nothing is handed on in process): every hop goes through its topic,
each step writes its Faust table once (the contacts step saves each state as it decides it)
and sends what it led to (the next hop, actions, dead letters) a record at a time. No timers:
the bench traffic has none due. Faust's worker logs "Ready" once started, which the bench waits for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import faust

from engine.config import Settings
from engine.core.identity import Emit, ToContacts, ToIdentity, ToItems
from engine.model import actions, deadletter
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.model.messages import decode_contact, decode_identity, decode_item, encode
from engine.pipeline import Output, Pipeline
from engine.runtime.faust.tables import TableStore
from engine.runtime.kafka.admin import ensure_topics
from engine.sdk.ruleset import RuleSet
from engine.storage import CachedItems, CachedStates
from engine.topics import TABLES

settings = Settings.from_env()
pipeline = Pipeline(RuleSet.load(settings.rules_dir), settings.load_policy())
app = faust.App(settings.app_id, broker=settings.broker, store="rocksdb://",
                datadir=str(settings.data_dir / "naive"), topic_partitions=settings.partitions,
                web_host="127.0.0.1", web_bind="127.0.0.1", web_port=settings.web_port,
                consumer_auto_offset_reset="earliest", autodiscover=False)


def _topic(*names: str) -> Any:
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw")


tables = {t: app.Table(t, key_type=bytes, value_type=bytes, partitions=settings.partitions)
          for t in TABLES}
identity = TableStore(tables["identity"])
items = CachedItems(TableStore(tables["items"]), capacity=1, batch=1)  # write per save
states = CachedStates(TableStore(tables["contacts"]), capacity=1, batch=1)  # write per save
internal = {t: _topic(name) for t, name in settings.topics.internal.items()}
out, dead = _topic(settings.topic_actions), _topic(settings.topic_dead_letters)
sources = settings.topics.inputs


async def _send(o: Output) -> None:
    if isinstance(o, Action):
        await out.send(key=o.contact_id.encode(), value=actions.encode(o))
    elif isinstance(o, DeadLetter):
        await dead.send(key=None, value=deadletter.encode(o))
    elif isinstance(o, ToIdentity | ToContacts | ToItems):  # not a state decided nor shadowed
        await internal[o.table].send(key=o.key.encode(), value=encode(o.msg))


def _agent(name: str, topic: Any, first: Callable[[Any], Emit | DeadLetter]) -> None:
    async def per_message(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            hop = first(event.message)
            if isinstance(hop, DeadLetter):
                await _send(hop)
                continue
            for o in pipeline.drain(hop, identity_store=identity, states=states, item_records=items,
                                    now=time.time, local=lambda _: False):
                await _send(o)

    app.agent(topic, name=f"naive-{name}")(per_message)


_agent("ingest", _topic(*sources), lambda m: pipeline.ingest(
    sources[m.topic], m.value, m.topic, partition=m.partition, offset=m.offset))
_agent("identity", internal["identity"],
       lambda m: ToIdentity(m.key.decode(), decode_identity(m.value)))
_agent("contacts", internal["contacts"],
       lambda m: ToContacts(m.key.decode(), decode_contact(m.value)))
_agent("items", internal["items"], lambda m: ToItems(m.key.decode(), decode_item(m.value)))


if __name__ == "__main__":
    asyncio.run(ensure_topics(settings))  # the internal topics, as a worker creates them
    app.main()
