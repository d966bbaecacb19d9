"""The Kairos agents: each batch of events handed to `Pipeline.drain`, what it yields moved.

One agent per keyed step: `ingest` on the input topics (clickstream, email, social, outcomes,
catalogue) and the erasure topic, `identity` on `<app>-identity`, `contacts` on `<app>-contacts`
and `items` on `<app>-items`. Each takes its events a batch at a time, acknowledged (and so
committed) only once handled, in the order they were produced across partitions: `ingest` holds
its takes (`noack_take`) in `InputOrder` until no input partition behind may still hold an
earlier event (order.py), the internal agents order each take. The drain runs in process every
step whose key falls in a partition this worker owns and has caught up on (`Ownership`, shared
with the batch runtime); the rest go to the internal topic of their owner. Tables are written
through the adapters of `tables.py`; changed contact states at the end of each batch. A timer on
the app fires due timers through the contacts step (and lets events held past `MAX_IDLE` go). No
business logic here: only routing and I/O.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.consumer import TopicPartitionGroup, TransactionManager

from engine.config import Settings
from engine.core.identity import Emit, ToContacts
from engine.model import actions as action_codec
from engine.model import deadletter
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.model.messages import encode
from engine.pipeline import Decided, Failures, Pipeline, Shadowed
from engine.runtime.faust.order import InputOrder
from engine.runtime.faust.tables import FaustTables
from engine.runtime.kafka.action_headers import SHADOW_TYPE_PREFIX, ActionHeaders
from engine.runtime.kafka.ownership import Ownership, first_message
from engine.storage.changelog import partition_of
from engine.topics import Table

__all__ = ["MAX_BATCH", "KairosAgents"]

log = logging.getLogger("kairos.worker")
MAX_BATCH = 2000  # events per take: bounds what a batch holds unacknowledged
# Seconds a take waits for more events: long enough that a batch spans what one fetch brought
# from every input partition, so it can be handled in the order the records were produced.
WITHIN = 0.25
MAX_IDLE = 1.0  # seconds an input partition behind may hold the others back (order.py)


class _Offsets:
    """What `Ownership` asks of a consumer, on Faust: the internal partitions' ends and the
    group's committed offsets from a reader outside the group, positions as the agents
    handled them (Faust's own consumer reads ahead of what its agents handled)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reader: Any = None  # built in the app's event loop, at the first assignment
        self.handled: dict[Any, int] = {}

    async def start(self) -> None:
        if self.reader is None:
            self.reader = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap,
                                           group_id=self.settings.app_id,
                                           enable_auto_commit=False)
            await self.reader.start()

    async def stop(self) -> None:
        if self.reader is not None:
            await self.reader.stop()
            self.reader = None

    async def end_offsets(self, tps: list[Any]) -> Mapping[Any, int]:
        ends: Mapping[Any, int] = await self.reader.end_offsets(tps)
        return ends

    async def committed(self, tp: Any) -> int | None:
        offset: int | None = await self.reader.committed(tp)
        return offset

    async def position(self, tp: Any) -> int | None:
        return self.handled.get(tp)

    async def start_of(self, tp: Any) -> int:
        """Where the group reads `tp` from: its committed offset, or the partition's start."""
        tp = TopicPartition(tp.topic, tp.partition)
        offset = await self.committed(tp)
        if offset is None:
            start: Mapping[Any, int] = await self.reader.beginning_offsets([tp])
            offset = start[tp]
        return offset


class KairosAgents:
    """The agents, tables and timer of one Kairos pipeline, declared on a `faust.App`."""

    def __init__(self, app: faust.App, settings: Settings, pipeline: Pipeline) -> None:
        self.app, self.settings, self.pipeline = app, settings, pipeline
        topics = settings.topics
        self.inputs = topics.inputs
        self.internal = topics.internal
        self.tables = FaustTables(app, settings, pipeline.metrics.state_bytes.observe)
        self.ownership = Ownership(self.internal, settings.partitions)
        self.offsets = _Offsets(settings)
        self.lock = asyncio.Lock()  # one of: a batch, a timer tick, a rebalance
        self.failures = Failures(source="pipeline", topic=self.internal["contacts"], logged=True)
        self.action_headers = ActionHeaders(settings.app_id)
        self.shadow_headers = ActionHeaders(settings.app_id, SHADOW_TYPE_PREFIX)
        n, rf = settings.partitions, settings.replication_factor
        self.to_internal: dict[Table, Any] = {
            t: _raw_topic(app, name, partitions=n, replicas=rf)
            for t, name in self.internal.items()}
        self.transaction: str | None = None  # where what the message in hand leads to goes
        inputs = _raw_topic(app, *self.inputs, settings.topic_erasure, partitions=n)
        self.order = InputOrder(MAX_IDLE, 2 * MAX_BATCH)
        self.ingest_stream: Any = None
        prefix = f"{settings.app_id}-kairos"
        app.agent(inputs, name=f"{prefix}-ingest")(self._ingest)
        for t, topic in self.to_internal.items():
            app.agent(topic, name=f"{prefix}-{t}")(self._agent)
        app.timer(settings.timer_interval, name=f"{prefix}-timers")(self._fire_timers)
        app.on_partitions_revoked.connect(self._revoked)
        app.on_rebalance_complete.connect(self._restored)
        app.on_before_shutdown.connect(self._stopping)

    async def _ingest(self, stream: Any) -> None:
        """The input topics: takes held in `InputOrder` (unacknowledged) until their events
        can go in timestamp order across all input partitions, acknowledged once handled."""
        self.ingest_stream = stream
        async for events in stream.noack_take(MAX_BATCH, within=WITHIN):
            async with self.lock:
                self.order.add(events)
                await self._release()

    async def _release(self) -> None:
        events = self.order.release(self.app.consumer.highwater, time.monotonic())
        if events:
            await self._batch(self.ingest_stream, events)

    async def _agent(self, stream: Any) -> None:
        """An internal topic: each take in the order its records were produced."""
        async for events in stream.noack_take(MAX_BATCH, within=WITHIN):
            async with self.lock:
                await self._batch(stream, _by_timestamp(events))

    async def _batch(self, stream: Any, events: list[Any]) -> None:
        """`events` handled in order, then acknowledged before anything may wait: a commit
        can only run while the agent waits, and one in between would take the outputs into
        its transactions without the offsets of the events they came from."""
        done: dict[Any, int] = {}
        for e in events:
            m = e.message
            await self._handle(m)
            done[m.tp] = m.offset + 1
        self.tables.cached.flush()  # before the batch is acknowledged
        for e in events:
            await stream.ack(e)
        self.offsets.handled.update(done)
        await self._caught_up(done)

    async def _caught_up(self, done: dict[Any, int]) -> None:
        sent = self.ownership.take_sent()
        if sent:
            await asyncio.gather(*sent.values())
        self.ownership.acknowledged(sent)
        await self.ownership.advance(done, self.offsets)

    async def _handle(self, m: Any) -> None:
        self.transaction = self._transaction_of(m.topic, m.partition)
        topic = m.topic
        msg, owned = first_message(self.pipeline, self.inputs, self.internal, topic, m.key,
                                   m.value, m.partition, m.offset)
        if isinstance(msg, DeadLetter):
            await self._dead(_kept(msg, m))
        elif owned or self.ownership.local(msg):
            await self._drain(msg)
        else:
            await self._forward(msg)

    async def _drain(self, first: Emit) -> None:
        tables = self.tables
        outputs = list(self.pipeline.drain(  # whole, before any await: one step at a time
            first, identity_store=tables.identity, states=tables.states,
            item_records=tables.item_records, now=time.time,
            local=self.ownership.local, failures=self.failures))
        for out in outputs:
            if isinstance(out, Action):
                await self._send(self.settings.topic_actions, out.contact_id.encode(),
                                 action_codec.encode(out), headers=self.action_headers.of(out))
            elif isinstance(out, Decided):
                tables.timers.track(out.state, partition_of(out.key, self.settings.partitions))
            elif isinstance(out, DeadLetter):
                await self._dead(out)
            elif isinstance(out, Shadowed):
                a = out.action
                await self._send(self.settings.topic_shadow_actions, a.contact_id.encode(),
                                 action_codec.encode(a), headers=self.shadow_headers.of(a))
            else:
                await self._forward(out)

    async def _forward(self, emit: Emit) -> None:
        """To the internal topic of the worker that owns the key."""
        p = partition_of(emit.key, self.settings.partitions)
        topic = self.internal[emit.table]
        ack = await self._send(topic, emit.key.encode(), encode(emit.msg), partition=p)
        self.ownership.sent(TopicPartition(topic, p), ack)

    async def _dead(self, letter: DeadLetter) -> None:
        await self._send(self.settings.topic_dead_letters, None, deadletter.encode(letter))

    async def _send(self, topic: str, key: bytes | None, value: bytes,
                    partition: int | None = None, headers: Any = None) -> Any:
        """Straight to the app's producer (a topic's `send` costs as much again in Faust's
        own bookkeeping), in the transaction of the message in hand under exactly_once."""
        return await self.app.producer.send(topic, key, value, partition, None, headers,
                                            transactional_id=self.transaction)

    def _transaction_of(self, topic: str, partition: int) -> str | None:
        """Under exactly_once, the transaction that commits the offset of `topic`'s
        `partition` (Faust's own id for it), so what a message leads to commits with it.
        Faust's topic sends would pick the transaction of the partition they write to, and
        none at all for a topic the app does not consume (actions, dead letters)."""
        if not self.app.in_transaction:
            return None
        group = self.app.assignor.group_for_topic(topic)
        return TransactionManager.transactional_id_format.format(
            group_id=self.app.conf.id, tpg=TopicPartitionGroup(topic, partition, group))

    async def _fire_timers(self) -> None:
        async with self.lock:
            if self.order:  # held for a partition behind: past `MAX_IDLE`, they go anyway
                await self._release()
            timers = self.tables.timers
            contacts = self.internal["contacts"]
            for key, msg, p in timers.pop_due(time.time()):
                self.transaction = self._transaction_of(contacts, p)
                first = ToContacts(key, msg)
                if self.ownership.local(first):
                    await self._drain(first)
                else:
                    await self._forward(first)
            self.pipeline.metrics.timers_pending = len(timers)
            self.tables.cached.flush()

    async def _revoked(self, sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        revoked: set[Any] = args[0]
        async with self.lock:
            self.order.revoke(revoked)
            gone = self.ownership.of_internal(revoked)
            if not gone:
                return
            self.ownership.revoke(gone)
            self.tables.timers.drop_partitions(gone.get("contacts", set()))
            self.tables.cached.clear()  # their next owner changes them now

    async def _stopping(self, sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        self.ownership.ready = False
        await self.offsets.stop()

    async def _restored(self, sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        """The assigned changelog partitions are restored: own the new partitions, index
        their timers, and go in process once their internal partitions are caught up."""
        async with self.lock:
            started = time.monotonic()
            assigned = self.app.assignor.assigned_actives()
            owned = self.ownership.of_internal(assigned)
            new = {t: ps - self.ownership.owned[t] for t, ps in owned.items()}
            new = {t: ps for t, ps in new.items() if ps}
            for t, ps in new.items():
                self.ownership.own(t, ps)
            self.tables.index_timers(new.get("contacts", set()))
            await self.offsets.start()
            names = {*self.inputs, self.settings.topic_erasure}
            self.order.assign({tp: await self.offsets.start_of(tp)
                               for tp in assigned if tp.topic in names})
            await self.ownership.start_catch_up(new, self.offsets)
            self.ownership.ready = True
            self.ownership.recovery_seconds = time.monotonic() - started
            log.info("Ready: assigned %s; %d timers pending",
                     sorted((tp.topic, tp.partition) for tp in assigned), len(self.tables.timers))


def _raw_topic(app: faust.App, *names: str, partitions: int | None = None,
               replicas: int | None = None) -> Any:
    """A topic of raw bytes keys and values (Kairos encodes its records itself)."""
    return app.topic(*names, partitions=partitions, replicas=replicas, key_type=bytes,
                     value_type=bytes, key_serializer="raw", value_serializer="raw")


def _by_timestamp(events: Iterable[Any]) -> list[Any]:
    """The events in the order they were produced (each partition's own kept)."""
    by_tp: dict[Any, list[tuple[float, int, Any]]] = {}
    for i, event in enumerate(events):
        m = event.message
        by_tp.setdefault(m.tp, []).append((m.timestamp, i, event))
    return [e for _, _, e in heapq.merge(*by_tp.values())]


def _kept(letter: DeadLetter, m: Any) -> DeadLetter:
    """A letter with its record's key, headers and timestamp (in ms): replayable as it came."""
    headers = list(m.headers.items()) if isinstance(m.headers, Mapping) else list(m.headers or ())
    return letter.with_record(m.key, headers, round(m.timestamp * 1000), m.timestamp_type)
