"""The Kafka runtime's hot path: batches straight on aiokafka, the pipeline's steps run in place.

The pipeline has three keyed steps (decode, identity, contact) joined by two internal topics,
`<app>-identity` (keyed by identifier) and `<app>-contacts` (keyed by contact id). Stock Faust
pays its per-message consumer path, a table write and a send at each hop: about 500 events/s
per worker here. This runtime keeps the topology and its guarantees but moves bytes in batches:

- one consumer group reads the input topics and both internal topics, `getmany` at a time;
- a message whose key falls in an internal partition this worker owns (and has caught up on)
  is handed to the next step in process, in order, instead of a round trip through Kafka; the
  others go to the internal topic for the worker that owns them, exactly as before;
- contact states are cached decoded and written once per commit (RocksDB + a changelog record
  per changed contact), not once per message;
- offsets are committed every `commit_interval` (or 2,000 records), only after everything
  produced since (actions, dead letters, internal messages, changelog records) was acknowledged
  by the broker: at-least-once, and a re-delivered event re-emits its action ids from the
  state's outbox instead of deciding again.

Tables (`engine/storage/changelog.py`) live in one RocksDB per table on local disk; their
changelogs are the compacted topics `<app>-identity-changelog` and `<app>-contacts-changelog`,
with the same names and raw byte records Faust used, so `kairos explain --kafka` and a worker
moving from Faust keep working. A worker restores the changelog partitions it is assigned (from
its last checkpoint) before it decides anything for them: the readiness gate on `/ready`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import signal
import time
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Any, Literal

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, TopicAlreadyExistsError

from engine.config import Settings
from engine.core.identity import Emit
from engine.errors import CommitError
from engine.model import actions as action_codec
from engine.model import deadletter
from engine.model import state as state_codec
from engine.model.deadletter import DeadLetter
from engine.model.events import Source
from engine.model.messages import decode_contact, decode_identity, encode
from engine.obs import logs
from engine.obs.metrics import Metrics
from engine.pipeline import Pipeline
from engine.runtime import rule_updates as rule_deploy
from engine.runtime.timers import TimerIndex
from engine.sdk.ruleset import RuleSet
from engine.storage import CachedStates
from engine.storage.changelog import Changelogged, Checkpoints, partition_of
from engine.topics import TABLES

log = logging.getLogger("kairos.worker")

MAX_BATCH = 2000  # records per getmany: bounds the memory and the time a batch holds offsets
MAX_UNACKED = 20_000  # records sent since the last commit before one is forced


class StreamWorker(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings, self.pipeline = settings, pipeline
        self.metrics = pipeline.metrics
        topics = settings.topics
        self.internal: dict[str, str] = {t: name for t, name in topics.internal.items()}
        self.sources: dict[str, Source] = topics.inputs
        self.partitions = settings.partitions
        root = settings.data_dir / "stream"
        root.mkdir(parents=True, exist_ok=True)
        self.tables: dict[str, Changelogged] = {
            t: Changelogged(root / t, topic) for t, topic in topics.changelogs.items()}
        self.states = CachedStates(self.tables["contacts"], capacity=settings.state_cache,
                                   batch=1 << 62, on_encoded=self.metrics.state_bytes.observe)
        self.checkpoints = Checkpoints.load(root / "checkpoints.json")
        self.timers = TimerIndex()
        self.owned: dict[str, set[int]] = {t: set() for t in TABLES}
        self.inline: dict[str, set[int]] = {t: set() for t in TABLES}  # owned and caught up
        # Internal partition -> the offset to read up to before going in-process: its end at
        # assignment, then past what this worker itself sent it meanwhile.
        self.catch_up: dict[TopicPartition, int] = {}
        self.sent_while_catching_up: dict[TopicPartition, asyncio.Future[Any]] = {}
        self.ready = False
        self.recovery_seconds = 0.0
        self.lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer
        self.producer: AIOKafkaProducer
        self.unacked: list[asyncio.Future[Any]] = []  # broker acks the next commit waits for
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        self.in_transaction = False
        self.uncommitted: dict[TopicPartition, int] = {}  # consumed, not yet committed
        self.committed_at = time.monotonic()
        self.consumed_since_commit = 0  # at most one batch (MAX_SEEN in engine/model/state.py)
        self.committing: asyncio.Future[None] | None = None  # acks and offsets in flight
        self.acks_in_flight: set[TopicPartition] = set()  # catching up; the commit awaits its acks
        self.failed: BaseException | None = None
        self.topic_partitions: dict[str, int] = {}  # output topic -> its partition count

    # -- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        self.producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap, acks="all", enable_idempotence=True, linger_ms=1,
            max_batch_size=256 * 1024, transactional_id=self._transactional_id(),
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap, group_id=s.app_id, enable_auto_commit=False,
            auto_offset_reset="earliest", isolation_level="read_committed",
            max_poll_records=MAX_BATCH, fetch_max_wait_ms=50,
            session_timeout_ms=int(s.session_timeout * 1000),
            heartbeat_interval_ms=int(max(s.session_timeout / 4, 0.5) * 1000),
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe([*self.sources, s.topic_erasure, *self.internal.values()],
                                listener=self)
        try:
            while not stop.is_set():
                batch = await self.consumer.getmany(timeout_ms=int(s.timer_interval * 1000))
                async with self.lock:
                    await self._process(batch)
        finally:
            async with self.lock:
                with contextlib.suppress(Exception):
                    await self._commit()
            await self.consumer.stop()
            await self.producer.stop()

    def close(self) -> None:
        for t in self.tables.values():
            t.db.close()

    async def _process(self, batch: dict[TopicPartition, list[Any]]) -> None:
        # Across partitions in the order the records were produced (each partition's own order
        # is kept): a contact whose events were keyed differently still sees them in order.
        merged = heapq.merge(*([(r.timestamp, tp, r) for r in records]
                               for tp, records in batch.items()), key=lambda x: x[0])
        for _, tp, r in merged:
            await self._handle(tp, r)
        done = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        self.uncommitted.update(done)
        self.consumed_since_commit += sum(len(records) for records in batch.values())
        for key, msg, _ in self.timers.pop_due(time.time()):
            await self._route([("contacts", key, msg)])
        self.metrics.timers_pending = len(self.timers)
        due = time.monotonic() - self.committed_at >= self.settings.commit_interval
        full = self.consumed_since_commit >= MAX_BATCH or len(self.unacked) > MAX_UNACKED
        if (due or full) and (
                self.uncommitted or self.unacked or self.states.dirty):
            await self._commit(wait=False)
        await self._advance_inline(done)

    async def _handle(self, tp: TopicPartition, r: Any) -> None:
        topic = tp.topic
        if topic in self.sources or topic == self.settings.topic_erasure:
            where = {"partition": tp.partition, "offset": r.offset}
            first = (self.pipeline.ingest(self.sources[topic], r.value, topic, **where)
                     if topic in self.sources
                     else self.pipeline.erasure(r.value or b"", topic, **where))
            if isinstance(first, DeadLetter):
                await self._dead(first)
            else:
                await self._route([first])
            return
        key = r.key.decode() if r.key is not None else ""
        try:
            msg = (decode_identity(r.value) if topic == self.internal["identity"]
                   else decode_contact(r.value))
        except Exception as exc:  # nobody else writes these topics, but never crash on one
            await self._dead(self.pipeline.dead_letter(f"undecodable internal message: {exc}",
                                                 "pipeline", r.value or b"", topic=topic,
                                                 partition=tp.partition, offset=r.offset))
            return
        table: Literal["identity", "contacts"] = (
            "identity" if topic == self.internal["identity"] else "contacts")
        await self._route([(table, key, msg)], here=True)

    async def _route(self, emits: Iterable[Emit], here: bool = False) -> None:
        """Run each keyed step in process when this worker owns its key, else send it on.

        `here`: the first message was consumed from its own partition, so it is ours.
        """
        queue: deque[Emit] = deque(emits)
        while queue:
            item = queue.popleft()
            table, key, msg = item
            p = partition_of(key, self.partitions)
            if not here and p not in self.inline[table]:
                ack = await self._send(self.internal[table], key, encode(msg), p)
                tp = TopicPartition(self.internal[table], p)
                if tp in self.catch_up:  # ours too must be read before going in-process
                    self.sent_while_catching_up[tp] = ack
                continue
            here = False
            if table == "identity":
                queue.extend(self.pipeline.on_identity(self.tables["identity"], key, msg))  # type: ignore[arg-type]
                continue
            try:
                out = self.pipeline.on_contact(self.states, key, msg, time.time())  # type: ignore[arg-type]
            except Exception as exc:  # a rule's bug must not stop the worker
                log.exception("decision for %s failed", key)
                await self._dead(self.pipeline.dead_letter(
                    f"decision failed: {type(exc).__name__}: {exc}", "pipeline", encode(msg),
                    topic=self.internal["contacts"], key=key))
                continue
            self.timers.track(out.state, p)
            queue.extend(out.emits)
            for action in out.actions:
                topic = self.settings.topic_actions
                await self._send(topic, action.contact_id, action_codec.encode(action),
                                 self._partition_for(topic, action.contact_id))

    async def _send(self, topic: str, key: str | None, value: bytes | None,
                    partition: int | None = None) -> asyncio.Future[Any]:
        """Queue a record (the producer batches it); its ack is awaited before the commit."""
        if self.exactly_once and not self.in_transaction:
            await self.producer.begin_transaction()
            self.in_transaction = True
        ack: asyncio.Future[Any] = await self.producer.send(
            topic, value, key=key.encode() if key is not None else None, partition=partition)
        self.unacked.append(ack)
        return ack

    def _partition_for(self, topic: str, key: str) -> int | None:
        """The producer's own choice for `key` (murmur2), from our cache rather than its
        per-record hashing; None until the topic's metadata is known (it then decides)."""
        n = self.topic_partitions.get(topic)
        if n is None:
            known = self.producer.client.cluster.partitions_for_topic(topic)
            if not known:
                return None
            n = self.topic_partitions[topic] = len(known)
        return partition_of(key, n)

    async def _dead(self, letter: DeadLetter) -> None:
        await self._send(self.settings.topic_dead_letters, None, deadletter.encode(letter))

    async def _commit(self, wait: bool = True) -> None:
        """Changed states out, every send acknowledged, then the offsets: never the reverse.

        Every `commit_interval` rather than every batch: actions leave as soon as they are
        decided, and the round trips of acks and offset commits are paid once per interval.
        At-least-once (`wait=False`) does not stop deciding for those round trips: the acks
        and the offset commit finish in the background while the next records are decided,
        one commit in flight at a time. A transaction must end before the next one begins.
        """
        await self._settled()
        done, self.uncommitted = self.uncommitted, {}
        self.committed_at, self.consumed_since_commit = time.monotonic(), 0
        self.states.flush()
        last: dict[TopicPartition, asyncio.Future[Any]] = {}
        writes: list[tuple[Changelogged, dict[str, bytes | None]]] = []
        for table in self.tables.values():
            taken = table.take_pending()
            writes.append((table, taken))
            for key, value in taken.items():
                p = partition_of(key, self.partitions)
                last[TopicPartition(table.topic, p)] = await self._send(table.topic, key, value, p)
        acks, self.unacked = self.unacked, []
        caught_up, self.sent_while_catching_up = self.sent_while_catching_up, {}
        self.acks_in_flight = set(caught_up)
        finish = self._finish_commit(done, acks, caught_up, writes, last)
        if wait or self.exactly_once:
            await finish
        else:
            self.committing = asyncio.ensure_future(finish)

    async def _settled(self) -> None:
        """The commit in flight, if any, finished.

        Its failure is raised here and every later commit refuses: offsets committed past
        records whose outputs were never acknowledged would lose those records.
        """
        if self.failed is not None:
            raise CommitError("an earlier commit failed; offsets stay where they were") \
                from self.failed
        if self.committing is not None:
            committing, self.committing = self.committing, None
            try:
                await committing
            except BaseException as exc:
                self.failed = exc
                raise

    async def _finish_commit(
        self,
        done: dict[TopicPartition, int],
        acks: list[asyncio.Future[Any]],
        caught_up: dict[TopicPartition, asyncio.Future[Any]],
        writes: list[tuple[Changelogged, dict[str, bytes | None]]],
        last: dict[TopicPartition, asyncio.Future[Any]],
    ) -> None:
        await asyncio.gather(*acks)
        for tp, ack in caught_up.items():
            if tp in self.catch_up:
                self.catch_up[tp] = max(self.catch_up[tp], ack.result().offset + 1)
        self.acks_in_flight.clear()
        if self.exactly_once:
            await self._commit_transaction(done)
        elif done:
            try:
                await self.consumer.commit(done)
            except (CommitFailedError, IllegalStateError) as exc:  # lost them in a rebalance
                log.warning("offsets not committed (%s): the new owner re-reads them", exc)
        for table, taken in writes:
            table.persist(taken)
        for tp, ack in last.items():
            self.checkpoints.set(tp, ack.result().offset + 1)
        if last:
            self.checkpoints.save()

    async def _commit_transaction(self, done: dict[TopicPartition, int]) -> None:
        """Outputs, table changes and input offsets visible together, or not at all."""
        if done and not self.in_transaction:
            await self.producer.begin_transaction()
            self.in_transaction = True
        if not self.in_transaction:
            return
        if done:
            await self.producer.send_offsets_to_transaction(done, self.settings.app_id)
        await self.producer.commit_transaction()
        self.in_transaction = False

    def _transactional_id(self) -> str | None:
        """Stable per worker (its data directory), so a restarted worker fences its old self."""
        if not self.exactly_once:
            return None
        path = self.settings.data_dir / "stream" / "worker-id"
        if not path.exists():
            path.write_text(uuid.uuid4().hex)
        return f"{self.settings.app_id}-{path.read_text().strip()}"

    # -- rebalances and the readiness gate -----------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:
            gone = self._internal_partitions(revoked)
            if not gone:
                return
            with contextlib.suppress(Exception):
                await self._commit()
            for table, ps in gone.items():
                self.owned[table] -= ps
                self.inline[table] -= ps
            self.timers.drop_partitions(gone.get("contacts", set()))
            self.states.clear()  # their next owner changes them now
            self.ready = False

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self.lock:
            started = time.monotonic()
            self.topic_partitions.clear()  # a rebalance is a good moment to see new partitions
            new = self._internal_partitions(assigned)
            for table, ps in new.items():
                await self._restore(table, ps)
                self.owned[table] |= ps
            self._index_timers(new.get("contacts", set()))
            tps = [TopicPartition(self.internal[t], p) for t, ps in new.items() for p in ps]
            ends = await self.consumer.end_offsets(tps) if tps else {}
            for tp, end in ends.items():
                committed = await self.consumer.committed(tp)
                if end > (committed or 0):
                    self.catch_up[tp] = end
                else:  # nothing in flight to it: in process from the start
                    table = "identity" if tp.topic == self.internal["identity"] else "contacts"
                    self.inline[table].add(tp.partition)
            self.ready = True
            self.recovery_seconds = time.monotonic() - started
            log.info("Ready: assigned %s; tables restored in %.2fs; %d timers pending",
                     sorted((tp.topic, tp.partition) for tp in assigned),
                     self.recovery_seconds, len(self.timers))

    def _internal_partitions(self, tps: Iterable[TopicPartition]) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for table, topic in self.internal.items():
            ps = {tp.partition for tp in tps if tp.topic == topic}
            if ps:
                out[table] = ps
        return out

    async def _advance_inline(self, done: dict[TopicPartition, int]) -> None:
        """A partition goes in-process once this worker has read everything sent to it before
        (by others before the assignment, by itself since): until then its messages keep going
        through the topic, so a contact's messages are never overtaken."""
        for tp, end in list(self.catch_up.items()):
            table = "identity" if tp.topic == self.internal["identity"] else "contacts"
            if tp.partition not in self.owned[table]:
                del self.catch_up[tp]
                continue
            if tp in self.sent_while_catching_up or tp in self.acks_in_flight:
                continue  # its own sends are not acknowledged yet: their offsets are unknown
            position = done.get(tp)
            if position is None:  # nothing read this batch: ask where the consumer stands
                with contextlib.suppress(asyncio.TimeoutError, IllegalStateError):
                    position = await asyncio.wait_for(self.consumer.position(tp), 0.05)
            if position is not None and position >= end:
                self.inline[table].add(tp.partition)
                del self.catch_up[tp]

    async def _restore(self, table: str, partitions: set[int]) -> None:
        """Read the changelog partitions from the last checkpoint to their end."""
        store = self.tables[table]
        tps = [TopicPartition(store.topic, p) for p in partitions]
        # "earliest" like the seeks below: aiokafka resets a freshly assigned partition on its
        # own, and with "latest" that reset could land after a seek to the beginning and win,
        # silently skipping the partition's whole history.
        reader = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap,
                                  enable_auto_commit=False, isolation_level="read_committed",
                                  max_poll_records=5000, auto_offset_reset="earliest")
        await reader.start()
        try:
            reader.assign(tps)
            ends = await reader.end_offsets(tps)
            pending = set()
            for tp in tps:
                start = self.checkpoints.get(tp)
                if start is None or start > ends[tp]:  # never read, or a recreated topic
                    await reader.seek_to_beginning(tp)
                else:
                    reader.seek(tp, start)
                if ends[tp] > (start or 0):
                    pending.add(tp)
            n = 0
            while pending:
                for records in (await reader.getmany(*pending, timeout_ms=500)).values():
                    for r in records:
                        store.apply(r.key, r.value)
                    n += len(records)
                for tp in list(pending):
                    if await reader.position(tp) >= ends[tp]:
                        pending.discard(tp)
            for tp in tps:
                self.checkpoints.set(tp, ends[tp])
            self.checkpoints.save()
            if n:
                log.info("restored %d %s records from %s", n, table, store.topic)
        finally:
            await reader.stop()

    def _index_timers(self, partitions: set[int]) -> None:
        if not partitions:
            return
        for key, raw in self.tables["contacts"].db.items():
            p = partition_of(key, self.partitions)
            if p in partitions:
                self.timers.track(state_codec.decode(raw), p)

    # -- warm standbys ---------------------------------------------------------------------

    async def keep_standbys(self) -> None:
        """Tail the changelog partitions other workers own into the local tables, so a takeover
        restores only what changed since (`KAIROS_STANDBY_REPLICAS=1`)."""
        reader = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap,
                                  enable_auto_commit=False, isolation_level="read_committed",
                                  auto_offset_reset="earliest")  # as in _restore
        await reader.start()
        following: set[TopicPartition] = set()
        tables = {t.topic: (name, t) for name, t in self.tables.items()}
        try:
            while True:
                wanted = {TopicPartition(t.topic, p) for name, t in self.tables.items()
                          for p in range(self.partitions) if p not in self.owned[name]}
                if not self.ready:  # a rebalance is moving partitions: wait for it
                    wanted = set()
                if wanted != following:
                    following = wanted
                    reader.assign(sorted(wanted))
                    for tp in wanted:
                        start = self.checkpoints.get(tp)
                        if start is None:
                            await reader.seek_to_beginning(tp)
                        else:
                            reader.seek(tp, start)
                if not following:
                    await asyncio.sleep(1)
                    continue
                batch = await reader.getmany(timeout_ms=1000, max_records=MAX_BATCH)
                async with self.lock:
                    for tp, records in batch.items():
                        name, table = tables[tp.topic]
                        if tp.partition in self.owned[name]:
                            continue  # ours now: the assignment's restore reads it
                        for r in records:
                            table.apply(r.key, r.value)
                        self.checkpoints.set(tp, records[-1].offset + 1)
                    if batch:
                        self.checkpoints.save()
        finally:
            await reader.stop()

    # -- health ----------------------------------------------------------------------------

    async def serve_health(self, port: int, host: str) -> web.AppRunner:
        async def live(_: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def ready(_: web.Request) -> web.Response:
            body = {"ready": self.ready, "partitions": {t: sorted(ps)
                                                         for t, ps in self.owned.items()},
                    "recovery_seconds": round(self.recovery_seconds, 3)}
            return web.json_response(body, status=200 if self.ready else 503)

        app = web.Application()
        app.router.add_get("/health", live)
        app.router.add_get("/ready", ready)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner


async def ensure_topics(settings: Settings) -> None:
    """Create the topics the group needs if the cluster lacks them; changelogs compacted."""
    n, rf = settings.partitions, settings.replication_factor
    plain, compacted = settings.topics.created()
    wanted = [NewTopic(t, n, rf) for t in plain]
    wanted += [NewTopic(t, n, rf, topic_configs={"cleanup.policy": "compact"}) for t in compacted]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was faster
                await admin.create_topics(missing)
    finally:
        await admin.close()
    await rule_deploy.ensure_rules_topic(settings.bootstrap, settings.topic_rules,
                                         settings.replication_factor)


async def serve(settings: Settings, pipeline: Pipeline, stop: asyncio.Event) -> None:
    """The worker until `stop`: topics, rules follower, health endpoint, the loop."""
    await ensure_topics(settings)
    deployed = await rule_deploy.latest(settings.bootstrap, settings.topic_rules)
    if deployed is not None:  # the last deployed rules win over the local directory
        rule_deploy.apply(deployed, settings.data_dir / "rules", pipeline.use_rules)
    log.info("deciding with rules: %s", pipeline.rules.describe())
    worker = StreamWorker(settings, pipeline)
    follower = asyncio.create_task(rule_deploy.follow(
        settings.bootstrap, settings.topic_rules, settings.data_dir / "rules", pipeline.use_rules))
    standby = (asyncio.create_task(worker.keep_standbys()) if settings.standby_replicas > 0
               else None)
    runner = await worker.serve_health(settings.web_port, settings.metrics_addr)
    try:
        await worker.run(stop)
    finally:
        for task in (follower, standby):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await runner.cleanup()
        worker.close()


def run_worker(settings: Settings) -> int:
    """`kairos worker`: run until SIGTERM/SIGINT, serving `/metrics`, `/health`, `/ready`."""
    import uvloop

    logs.setup()
    metrics = Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.metrics_addr)
    pipeline = Pipeline(RuleSet.load(settings.rules_dir), settings.load_policy(), metrics=metrics)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, pipeline, stop)

    uvloop.run(main())
    return 0
