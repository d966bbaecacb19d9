"""The consume loop: batches from the group, each record handed to the pipeline's drain, what
the drain yields moved to Kafka (`Commits.send`), commits when due.

Across partitions a batch is handled in the order its records were produced (each partition's
own order kept), so a contact whose events were keyed differently still sees them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from typing import Any

from aiokafka import TopicPartition

from engine.config import Settings
from engine.core.identity import Emit, ToContacts
from engine.model import actions as action_codec
from engine.model import deadletter
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.model.messages import encode
from engine.pipeline import Decided, Failures, Pipeline, Shadowed
from engine.runtime.kafka import clients
from engine.runtime.kafka.action_headers import SHADOW_TYPE_PREFIX, ActionHeaders
from engine.runtime.kafka.assignment import Rebalance
from engine.runtime.kafka.commits import Commits
from engine.runtime.kafka.faults import BrokerProbe
from engine.runtime.kafka.ownership import Ownership, first_message
from engine.runtime.kafka.tables import Tables
from engine.storage.changelog import partition_of

# Seconds of deciding before the event loop gets a turn, within a batch: the producer sends
# the actions decided so far (they leave as they are decided, not when the batch ends) and the
# consumer fetches the next records meanwhile.
TURN = 0.002
_stopping: set[asyncio.Future[None]] = set()  # abandoned clients still closing


async def abandoned_closed(timeout: float) -> bool:
    """Wait (at most `timeout` s) for the clients of failed workers to finish closing.

    Once the broker is back they close quickly: the consumer leaves the group (so the next
    worker gets the partitions without waiting for the session timeout) and the producer hands
    over what it still held. Starting the next worker only then keeps a late record of the old
    producer from landing after the new worker's (under exactly-once, the new producer then
    fences the old one and aborts its transaction). True when every one has closed.
    """
    if _stopping:
        await asyncio.wait(set(_stopping), timeout=timeout)
    return not _stopping


async def _stop_quietly(*clients_: Any) -> None:
    """Each client stopped in turn (they finish once the broker answers); errors are expected
    from a failed worker's clients."""
    for client in clients_:
        with contextlib.suppress(Exception):
            await client.stop()


class StreamWorker:
    """One group member. Must be built inside the event loop it runs on (the clients bind to
    it); `run` starts and stops the clients, `close` the local tables."""

    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings, self.pipeline = settings, pipeline
        self.metrics = pipeline.metrics
        topics = settings.topics
        self.internal = topics.internal
        self.inputs = topics.inputs
        self.tables = Tables(settings, self.metrics.state_bytes.observe)
        self.ownership = Ownership(self.internal, settings.partitions)
        self.lock = asyncio.Lock()  # one of: a batch, a rebalance, a standby apply
        self.consumer = clients.consumer(settings)
        self.producer = clients.producer(settings, self.consumer)
        self.output_partitions = clients.OutputPartitions(self.producer)
        self.commits = Commits(settings, self.producer, self.consumer, self.tables,
                               self.ownership)
        self.failures = Failures(source="pipeline", topic=self.internal["contacts"], logged=True)
        self.action_headers = ActionHeaders(settings.app_id)
        self.shadow_headers = ActionHeaders(settings.app_id, SHADOW_TYPE_PREFIX)
        self.record_time: float | None = None  # timestamp of the record being handled, in s

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`; the last commit on the way out, before the clients stop.

        A failure skips that commit: the offsets stay where the last good commit left them,
        and the clients are let go (`abandon`) for whoever starts over.
        """
        s = self.settings
        probe = BrokerProbe(s, self.producer)
        try:
            await self.producer.start()
            await self.consumer.start()
            probe.start()
            listener = Rebalance(s, self.consumer, self.lock, self.tables, self.ownership,
                                 self.commits, self.output_partitions)
            self.consumer.subscribe([*self.inputs, s.topic_erasure, *self.internal.values()],
                                    listener=listener)
            while not stop.is_set():
                batch = await self.consumer.getmany(timeout_ms=int(s.timer_interval * 1000))
                probe.check()
                async with self.lock:
                    await self._process(batch)
        except BaseException:
            self.ownership.ready = False
            self.abandon()
            raise
        finally:
            probe.stop()
        async with self.lock:
            with contextlib.suppress(Exception):
                await self.commits.commit()
        await self.consumer.stop()
        await self.producer.stop()

    def abandon(self) -> None:
        """Let go of a failed worker's clients without committing anything more.

        The commit in flight is cancelled (its offsets never reach the broker, its table
        writes never the local tables). The consumer stops first, so it cannot rejoin the
        group beside the next worker's; the producer's unsent records fail by themselves
        within its delivery timeout, so both stop in the background instead of holding up
        the recovery. Under exactly-once the next producer fences this one and aborts its
        transaction.
        """
        self.commits.cancel()
        task = asyncio.ensure_future(_stop_quietly(self.consumer, self.producer))
        _stopping.add(task)
        task.add_done_callback(_stopping.discard)

    def close(self) -> None:
        self.tables.close()

    async def _process(self, batch: dict[TopicPartition, list[Any]]) -> None:
        merged = heapq.merge(*([(r.timestamp, tp, r) for r in records]
                               for tp, records in batch.items()), key=lambda x: x[0])
        turn = time.perf_counter()
        for _, tp, r in merged:
            await self._handle(tp, r)
            if time.perf_counter() - turn >= TURN:
                await asyncio.sleep(0)
                turn = time.perf_counter()
        done = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        self.commits.consumed(done, sum(len(records) for records in batch.values()))
        timers = self.tables.timers
        self.record_time = None  # a timer's action has no record to be timed from
        for key, msg, _ in timers.pop_due(time.time()):
            await self._dispatch(ToContacts(key, msg))
        self.metrics.timers_pending = len(timers)
        if self.commits.due():
            await self.commits.commit(wait=False)
        await self.ownership.advance(done, self.consumer)

    async def _handle(self, tp: TopicPartition, r: Any) -> None:
        topic = tp.topic
        self.record_time = r.timestamp / 1000
        msg, owned = first_message(self.pipeline, self.inputs, self.internal, topic, r.key,
                                   r.value, tp.partition, r.offset)
        if isinstance(msg, DeadLetter):
            await self._dead(_kept(msg, r))
        elif owned:
            await self._drain(msg)
        else:
            await self._dispatch(msg)

    async def _dispatch(self, emit: Emit) -> None:
        """A first hop: run here when this worker owns its key, else send it on."""
        if self.ownership.local(emit):
            await self._drain(emit)
        else:
            await self._forward(emit)

    async def _drain(self, first: Emit) -> None:
        tables = self.tables
        for out in self.pipeline.drain(first, identity_store=tables.identity,
                                       states=tables.states, item_records=tables.item_records,
                                       now=time.time,
                                       local=self.ownership.local, failures=self.failures):
            if isinstance(out, Action):
                if self.record_time is not None:
                    self.metrics.record_to_action.observe(time.time() - self.record_time)
                topic = self.settings.topic_actions
                await self.commits.send(topic, out.contact_id, action_codec.encode(out),
                                        self.output_partitions.of(topic, out.contact_id),
                                        self.action_headers.of(out))
            elif isinstance(out, Decided):
                tables.timers.track(out.state, partition_of(out.key, self.settings.partitions))
            elif isinstance(out, DeadLetter):
                await self._dead(out)
            elif isinstance(out, Shadowed):
                await self._shadow(out.action)
            else:
                await self._forward(out)

    async def _shadow(self, action: Action) -> None:
        """A shadow rule's would-be action, keyed and headed like an action, on its own topic."""
        topic = self.settings.topic_shadow_actions
        await self.commits.send(topic, action.contact_id, action_codec.encode(action),
                                self.output_partitions.of(topic, action.contact_id),
                                self.shadow_headers.of(action))

    async def _forward(self, emit: Emit) -> None:
        """To the internal topic of the worker that owns the key."""
        p = partition_of(emit.key, self.settings.partitions)
        topic = self.internal[emit.table]
        ack = await self.commits.send(topic, emit.key, encode(emit.msg), p)
        self.ownership.sent(TopicPartition(topic, p), ack)

    async def _dead(self, letter: DeadLetter) -> None:
        await self.commits.send(self.settings.topic_dead_letters, None, deadletter.encode(letter))


def _kept(letter: DeadLetter, r: Any) -> DeadLetter:
    """A letter with its record's key, headers and timestamp: replayable as it came."""
    return letter.with_record(r.key, r.headers, r.timestamp, r.timestamp_type)
