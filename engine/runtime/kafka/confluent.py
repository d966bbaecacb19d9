"""The worker's group consumer and producer on librdkafka (confluent-kafka), opt-in with
`KAIROS_KAFKA_CLIENT=confluent`, behind the calls the runtime makes of aiokafka's.

librdkafka moves records in C threads of its own: the worker's Python thread only hands records
over and takes them back. Its calls block, so the consumer's `consume` and every call that waits
on the broker (commits, transactions, offsets) run in a thread (`asyncio.to_thread`); the
rebalance callbacks it runs inside `consume` hand the runtime's listener to the event loop and
wait for it, so a partition is restored before `consume` returns a record of it. A record's ack
is a plain object its delivery callback fills in, not a future per record: a commit waits for
its acks by polling the producer. Its errors become the aiokafka errors they share a code with,
so `faults.py` classifies both clients alike.

librdkafka starts fetching each newly assigned partition once its position is known (at once
for a committed offset, after a round trip for one reset to the earliest), and hands fetched
data over one partition queue at a time: the first batches after an assignment would hold one
partition each, and a contact's later event in one partition would be decided before its
earlier one in another. So the first batch after an assignment waits (at most `GATHER`) until
every assigned partition has returned a record or reported its end, as aiokafka's `getmany`
returns every partition's first fetch at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import confluent_kafka as ck
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError, ProducerFenced, for_code

from engine.config import Settings

__all__ = ["Ack", "Consumer", "Producer", "error_of"]

_FENCED = {ck.KafkaError._FENCED, ck.KafkaError.PRODUCER_FENCED,
           ck.KafkaError.INVALID_PRODUCER_EPOCH}
LINGER_MS = 5  # librdkafka's default: longer holds each action back, shorter sends tiny requests
GATHER = 2.0  # s after an assignment the first batch waits for every partition's first fetch


def error_of(err: Any) -> KafkaError:
    """librdkafka's error as the aiokafka error of the same Kafka protocol code."""
    code = err.code()
    if code in _FENCED:
        return ProducerFenced()
    if code == ck.KafkaError._TIMED_OUT or code == ck.KafkaError._MSG_TIMED_OUT:
        return KafkaTimeoutError(err.str())
    if code > 0:
        return for_code(code)(err.str())
    return KafkaError(err.str())


async def _blocking(call: Any, *args: Any, **kwargs: Any) -> Any:
    """A call that waits on the broker, in a thread; its error as an aiokafka one."""
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except ck.KafkaException as exc:
        raise error_of(exc.args[0]) from exc


class Ack:
    """One record's delivery: its offset once acknowledged, or its error."""

    __slots__ = ("error", "offset", "settled")

    def __init__(self) -> None:
        self.offset, self.error, self.settled = -1, None, False

    def done(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.error = err
        else:
            self.offset = msg.offset()
        self.settled = True

    def result(self) -> Ack:
        if self.error is not None:
            raise error_of(self.error)
        return self


class Record:
    """A consumed record with the attributes the worker reads of aiokafka's."""

    __slots__ = ("headers", "key", "offset", "timestamp", "timestamp_type", "value")

    def __init__(self, m: Any) -> None:
        self.key, self.value, self.offset = m.key(), m.value(), m.offset()
        kind, self.timestamp = m.timestamp()
        # librdkafka numbers the types 1 (create) and 2 (log append), the protocol 0 and 1
        self.timestamp_type = kind - 1 if kind else None
        self.headers = m.headers() or []


class _Cluster:
    def __init__(self, producer: ck.Producer) -> None:
        self.producer = producer

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        found = self.producer.list_topics(topic, timeout=5).topics.get(topic)
        return set(found.partitions) if found is not None and found.partitions else None


class _Client:
    """What the partition cache asks of aiokafka's producer client."""

    def __init__(self, producer: ck.Producer) -> None:
        self.cluster = _Cluster(producer)


class Consumer:
    def __init__(self, settings: Settings, max_batch: int) -> None:
        self.max_batch = max_batch
        self.c = ck.Consumer({
            "bootstrap.servers": settings.bootstrap, "group.id": settings.app_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "isolation.level": "read_committed", "fetch.wait.max.ms": 50,
            # librdkafka's default pauses fetching for 1 s once its prefetch queue is full
            "fetch.queue.backoff.ms": 10, "queued.max.messages.kbytes": 65536,
            "session.timeout.ms": int(settings.session_timeout * 1000),
            "heartbeat.interval.ms": int(max(settings.session_timeout / 4, 0.5) * 1000),
            "partition.assignment.strategy": "range",  # see clients.consumer
            "enable.partition.eof": True,  # an assigned partition with nothing to read says so
        })
        self.loop: asyncio.AbstractEventLoop | None = None
        self.listener: Any = None  # the runtime's, until `stop`
        # Assigned partitions that have not yet returned a record or their end, and until when
        # the first batch waits for them; the partitions revoked during the last `consume`.
        self.unfetched: set[tuple[str, int]] = set()
        self.gather_until = 0.0
        self.revoked: set[tuple[str, int]] = set()

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener
        self.c.subscribe(topics, on_assign=lambda _, ps: self.on_assign(ps),
                         on_revoke=lambda _, ps: self.on_revoke(ps))

    def on_assign(self, ps: list[Any]) -> None:
        """The listener restores them; librdkafka starts fetching them once this returns."""
        self._run("on_partitions_assigned", ps)
        self.unfetched = {(p.topic, p.partition) for p in ps}
        self.gather_until = time.monotonic() + GATHER

    def on_revoke(self, ps: list[Any]) -> None:
        self._run("on_partitions_revoked", ps)
        gone = {(p.topic, p.partition) for p in ps}
        self.unfetched -= gone
        self.revoked |= gone

    def _run(self, callback: str, ps: list[Any]) -> None:
        """The listener's `callback` on the event loop, waited for (inside `consume`, in its
        thread); nothing once the consumer is stopping."""
        listener = self.listener
        if listener is None:
            return
        assert self.loop is not None
        coro = getattr(listener, callback)([TopicPartition(p.topic, p.partition) for p in ps])
        asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[Record]]:
        messages = await _blocking(self._consume, timeout_ms / 1000)
        out: dict[TopicPartition, list[Record]] = {}
        tps: dict[tuple[str, int], TopicPartition] = {}
        for m in messages:
            where = (m.topic(), m.partition())
            tp = tps.get(where)
            if tp is None:
                tp = tps[where] = TopicPartition(*where)
                out[tp] = []
            out[tp].append(Record(m))
        return out

    def _consume(self, timeout: float) -> list[Any]:
        """What has arrived, or else the first record to arrive within `timeout` and what came
        with it, as aiokafka's `getmany` returns; after an assignment, with every partition's
        first fetch (`GATHER`).

        librdkafka's `consume(n, timeout)` waits until it holds `n` records or the timeout
        passes: under a steady load below `n` per timeout, every batch would wait the whole
        timeout before its first record is decided.
        """
        got = self._take([], self.max_batch, 0)
        if not got:
            deadline = time.monotonic() + timeout
            while not got and (left := deadline - time.monotonic()) > 0:
                got = self._take(got, 1, left)  # again when what came was a partition's end
            if got:
                got = self._take(got, self.max_batch - 1, 0)
        while got and self.unfetched and len(got) < self.max_batch:
            left = self.gather_until - time.monotonic()
            if left <= 0:  # a partition that never answers holds up no later batch
                self.unfetched = set()
                break
            got = self._take(got, self.max_batch - len(got), min(left, 0.05))
        return got

    def _take(self, got: list[Any], n: int, timeout: float) -> list[Any]:
        """`got` and the records of one `consume(n, timeout)`; ends of partitions and other
        informational errors dropped (librdkafka retries), fatal ones raised.

        A rebalance run inside that call makes what earlier calls took of the revoked
        partitions stale (their next owner reads them from the committed offsets): dropped.
        """
        self.revoked = set()
        messages = self.c.consume(n, timeout)
        if self.revoked:
            got = [m for m in got if (m.topic(), m.partition()) not in self.revoked]
        unfetched = self.unfetched
        for m in messages:
            if unfetched:
                unfetched.discard((m.topic(), m.partition()))
            err = m.error()
            if err is None:
                got.append(m)
            elif err.fatal():
                raise error_of(err)
        return got

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await _blocking(self.c.commit, offsets=_offsets(offsets), asynchronous=False)

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: (await _blocking(self.c.get_watermark_offsets, _tp(tp), 10))[1]
                for tp in tps}

    async def committed(self, tp: TopicPartition) -> int | None:
        got = await _blocking(self.c.committed, [_tp(tp)], 10)
        return got[0].offset if got[0].offset >= 0 else None

    async def position(self, tp: TopicPartition) -> int | None:
        got = self.c.position([_tp(tp)])
        return got[0].offset if got[0].offset >= 0 else None

    async def stop(self) -> None:
        """Leave the group without running the listener, as aiokafka's `stop` does.

        librdkafka revokes the assignment inside `close`: run there, the listener would commit
        for a worker that is stopping, or one that failed and was abandoned, whose transaction
        may hold outputs whose input offsets its failed commit never sent.
        """
        self.listener = None
        await _blocking(self.c.close)


class Producer:
    def __init__(self, settings: Settings, transactional_id: str | None,
                 consumer: Consumer) -> None:
        conf: dict[str, Any] = {"bootstrap.servers": settings.bootstrap, "acks": "all",
                                "enable.idempotence": True, "linger.ms": LINGER_MS}
        if transactional_id is not None:
            conf["transactional.id"] = transactional_id
        self.p = ck.Producer(conf)
        self.transactional = transactional_id is not None
        self.consumer = consumer  # its group metadata goes with the offsets (KIP-447)
        self.client = _Client(self.p)

    async def start(self) -> None:
        if self.transactional:
            await _blocking(self.p.init_transactions, 30)

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None,
                   partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> Ack:
        ack = Ack()
        try:
            self.p.produce(topic, value, key, -1 if partition is None else partition,
                           on_delivery=ack.done, headers=headers)
        except BufferError:  # its queue is full: let it deliver some first
            await _blocking(self.p.poll, 1)
            self.p.produce(topic, value, key, -1 if partition is None else partition,
                           on_delivery=ack.done, headers=headers)
        return ack

    async def wait_acks(self, acks: list[Any]) -> None:
        """Until every one of `acks` is settled; raises the first error among them.

        The delivery reports already in are served here, on the event loop: by the time a
        commit asks, most are, and only the rest are waited for in a thread (whose callbacks
        would otherwise take the GIL from the deciding thread, report by report)."""
        self.p.poll(0)
        unsettled = next((i for i, ack in enumerate(acks) if not ack.settled), None)
        if unsettled is not None:
            await _blocking(self._wait, acks[unsettled:])
        for ack in acks:
            ack.result()

    def _wait(self, acks: list[Ack]) -> None:
        i = 0
        while i < len(acks):
            if acks[i].settled:
                i += 1
            else:
                self.p.poll(0.005)

    async def answer(self, topic: str) -> None:
        """One metadata round trip, for `topic` alone (the broker probe's question)."""
        await _blocking(self.p.list_topics, topic, 2)

    async def begin_transaction(self) -> None:
        try:
            self.p.begin_transaction()
        except ck.KafkaException as exc:
            raise error_of(exc.args[0]) from exc

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int],
                                          _group_id: str) -> None:
        await _blocking(self.p.send_offsets_to_transaction, _offsets(offsets),
                        self.consumer.c.consumer_group_metadata(), 30)

    async def commit_transaction(self) -> None:
        await _blocking(self.p.commit_transaction, 30)

    async def stop(self) -> None:
        await _blocking(self.p.flush, 30)


def _tp(tp: TopicPartition, offset: int = ck.OFFSET_INVALID) -> Any:
    return ck.TopicPartition(tp.topic, tp.partition, offset)


def _offsets(offsets: dict[TopicPartition, int]) -> list[Any]:
    return [_tp(tp, offset) for tp, offset in offsets.items()]
