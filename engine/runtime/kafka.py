"""The Kafka runtime: Faust agents move the pipeline's messages over real topics.

Three agents, one per keyed step, each a thin loop around `Pipeline`:

    clickstream, email-events, social-interactions --ingest--> <app>-identity (key: identifier)
    <app>-identity --resolve (identity table)--> <app>-identity | <app>-contacts (key: contact id)
    <app>-contacts --decide (contacts table)--> next-best-actions | <app>-contacts | <app>-identity

Tables are RocksDB-backed (rocksdict) with changelogs, so a restarted or rebalanced worker
recovers its contacts. Values are raw bytes (msgpack made by the pipeline): Faust never
serialises our state. Offsets are committed by Faust only after the producer has flushed what
the event produced, so nothing decided is lost; a re-delivered event re-emits the same
action ids (the state's outbox) instead of deciding again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from engine import actions as action_codec
from engine import deadletter, rule_deploy
from engine import state as state_codec
from engine.config import Settings
from engine.deadletter import DeadLetter
from engine.events import Source
from engine.identity import Emit
from engine.messages import decode_contact, decode_identity, encode
from engine.metrics import Metrics
from engine.pipeline import Pipeline
from engine.ruleset import RuleSet
from engine.stores import EncodedStates
from engine.timers import TimerIndex

log = logging.getLogger("kairos.worker")


class TableStore:
    """A Faust Table seen as a `BytesStore` (str keys, bytes values)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self._table.get(key.encode())
        return value

    def __setitem__(self, key: str, value: bytes) -> None:
        self._table[key.encode()] = value


def build_app(settings: Settings, pipeline: Pipeline) -> faust.App:
    """The Faust app with its topics, tables and agents; started by `run_worker` or tests."""
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        store="rocksdb://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=settings.processing_guarantee,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        producer_linger_ms=1,
        producer_acks=-1,
        broker_commit_interval=1.0,
        table_standby_replicas=0,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(settings.session_timeout / 4, 0.5),
    )
    partitions = settings.partitions
    sources: dict[str, Source] = settings.input_topics  # type: ignore[assignment]
    inputs = app.topic(*sources, value_serializer="raw", key_serializer="raw")
    identity_topic = app.topic(
        f"{settings.app_id}-identity", internal=True, partitions=partitions
    )
    contacts_topic = app.topic(
        f"{settings.app_id}-contacts", internal=True, partitions=partitions
    )
    actions_topic = app.topic(settings.topic_actions)
    dead_topic = app.topic(settings.topic_dead_letters)
    # key_type/value_type bytes make Faust use its "raw" codec: it never re-encodes our msgpack.
    identity_table = app.Table(
        "identity", partitions=partitions, default=None, key_type=bytes, value_type=bytes
    )
    contacts_table = app.Table(
        "contacts", partitions=partitions, default=None, key_type=bytes, value_type=bytes
    )
    identity_store = TableStore(identity_table)
    contacts_store = EncodedStates(TableStore(contacts_table))  # each write is a changelog record
    timers = TimerIndex()
    topics = {"identity": identity_topic, "contacts": contacts_topic}

    async def emit(item: Emit) -> None:
        topic, key, msg = item
        await topics[topic].send(key=key.encode(), value=encode(msg))

    async def dead(letter: DeadLetter) -> None:
        await dead_topic.send(key=None, value=deadletter.encode(letter))

    @app.agent(inputs)
    async def ingest(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            first = pipeline.ingest(
                sources[msg.topic], event.value, msg.topic,
                partition=msg.partition, offset=msg.offset,
            )
            if isinstance(first, DeadLetter):
                await dead(first)
            else:
                await emit(first)

    @app.agent(identity_topic)
    async def resolve(stream: Any) -> None:
        async for event in stream.events():
            key = event.key.decode()
            try:
                emits = pipeline.on_identity(identity_store, key, decode_identity(event.value))
            except Exception as exc:  # never crash on one bad message
                await dead(_failed(pipeline, event, key, exc))
                continue
            for item in emits:
                await emit(item)

    @app.agent(contacts_topic)
    async def decide(stream: Any) -> None:
        async for event in stream.events():
            key = event.key.decode()
            try:
                out = pipeline.on_contact(
                    contacts_store, key, decode_contact(event.value), time.time()
                )
            except Exception as exc:
                await dead(_failed(pipeline, event, key, exc))
                continue
            timers.track(out.state)
            for item in out.emits:
                await emit(item)
            for action in out.actions:
                await actions_topic.send(
                    key=action.contact_id.encode(), value=action_codec.encode(action)
                )

    @contacts_table.on_recover
    async def index_timers() -> None:
        """After recovery, re-index the pending timers of the contacts this worker owns."""
        n = 0
        for _, raw in contacts_table.items():
            if raw:
                timers.track(state_codec.decode(raw))
                n += 1
        log.info("timer index rebuilt from %d contacts: %d pending", n, len(timers))

    @app.task  # type: ignore[untyped-decorator]
    async def follow_rules() -> None:
        """Rule changes published with `kairos rules deploy` reach this worker in seconds."""
        await rule_deploy.follow(
            settings.bootstrap, settings.topic_rules, settings.data_dir / "rules",
            pipeline.use_rules,
        )

    @app.timer(interval=settings.timer_interval)  # type: ignore[untyped-decorator]
    async def fire_due_timers() -> None:
        for key, msg, _ in timers.pop_due(time.time()):
            await contacts_topic.send(key=key.encode(), value=encode(msg))
        pipeline.metrics.timers_pending = len(timers)

    return app


def _failed(pipeline: Pipeline, event: Any, key: str, exc: Exception) -> DeadLetter:
    msg = event.message
    log.exception("message on %s[%s]@%s failed", msg.topic, msg.partition, msg.offset)
    return pipeline.dead_letter(
        f"decision failed: {type(exc).__name__}: {exc}",
        "pipeline",
        event.value,
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=key,
    )


async def ensure_topics(settings: Settings) -> None:
    """Create the input, output and dead-letter topics if the cluster lacks them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [*settings.input_topics, settings.topic_actions, settings.topic_dead_letters]
        wanted = [
            NewTopic(n, settings.partitions, settings.replication_factor)
            for n in names
            if n not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was faster
                await admin.create_topics(wanted)
    finally:
        await admin.close()
    await rule_deploy.ensure_rules_topic(
        settings.bootstrap, settings.topic_rules, settings.replication_factor
    )


def run_worker(settings: Settings) -> int:
    """`kairos worker`: run until stopped (SIGTERM/SIGINT), serving `/metrics`."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(ensure_topics(settings))
    deployed = asyncio.run(rule_deploy.latest(settings.bootstrap, settings.topic_rules))
    asyncio.set_event_loop(asyncio.new_event_loop())
    metrics = Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.metrics_addr)
    pipeline = Pipeline(RuleSet.load(settings.rules_dir), settings.load_policy(), metrics=metrics)
    if deployed is not None:  # the last deployed rules win over the local directory
        rule_deploy.apply(deployed, settings.data_dir / "rules", pipeline.use_rules)
    log.info("deciding with rules: %s", pipeline.rules.describe())
    app = build_app(settings, pipeline)
    worker = faust.Worker(app, loglevel="INFO", quiet=True)
    worker.execute_from_commandline()
    return 0
