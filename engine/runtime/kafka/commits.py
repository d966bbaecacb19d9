"""The commit protocol: input offsets move only after every output of their events is safe.

Every record a worker produces (actions, dead letters, internal messages, changelog records)
goes through `Commits.send`, which keeps its ack. A commit writes the changed contact states
out (changelog records), awaits every ack since the last commit, and only then commits the
input offsets: at-least-once, and a re-delivered event re-emits its action ids from the
state's outbox instead of deciding again. Under exactly-once the same outputs and the offsets
are one transaction instead. A commit that fails latches: every later one refuses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from engine.config import Settings
from engine.errors import BrokerUnreachable, CommitError
from engine.runtime.kafka.clients import MAX_BATCH
from engine.runtime.kafka.ownership import Ownership
from engine.runtime.kafka.tables import Tables
from engine.storage.changelog import Changelogged, partition_of

log = logging.getLogger("kairos.worker")

MAX_UNACKED = 20_000  # records sent since the last commit before one is forced


class Commits:
    def __init__(self, settings: Settings, producer: AIOKafkaProducer,
                 consumer: AIOKafkaConsumer, tables: Tables, ownership: Ownership) -> None:
        self.settings, self.producer, self.consumer = settings, producer, consumer
        self.tables, self.ownership = tables, ownership
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        self.in_transaction = False
        self.unacked: list[asyncio.Future[Any]] = []  # broker acks the next commit waits for
        self.uncommitted: dict[TopicPartition, int] = {}  # consumed, not yet committed
        self.committed_at = time.monotonic()
        self.consumed_since_commit = 0  # at most one batch (MAX_SEEN in engine/model/state.py)
        self.committing: asyncio.Future[None] | None = None  # acks and offsets in flight
        self.failed: BaseException | None = None

    async def send(self, topic: str, key: str | None, value: bytes | None,
                   partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
        """Queue a record (the producer batches it); its ack is awaited before the commit.
        Under exactly-once it joins the open transaction, headers and all."""
        if self.exactly_once and not self.in_transaction:
            await self.producer.begin_transaction()
            self.in_transaction = True
        ack: asyncio.Future[Any] = await self.producer.send(
            topic, value, key=key.encode() if key is not None else None, partition=partition,
            headers=headers)
        self.unacked.append(ack)
        return ack

    def consumed(self, done: dict[TopicPartition, int], records: int) -> None:
        """A batch was handled: `done` holds the next offset of each partition it read."""
        self.uncommitted.update(done)
        self.consumed_since_commit += records

    def due(self) -> bool:
        """Every `commit_interval`, or sooner when a batch's worth or too many acks wait.

        An interval's commit waits while an at-least-once commit is still in flight: it would
        first wait for that one, and the records behind it too. A full one does not wait:
        uncommitted records stay within what a contact's state remembers as seen."""
        full = self.consumed_since_commit >= MAX_BATCH or len(self.unacked) > MAX_UNACKED
        if not full and self.committing is not None and not self.committing.done():
            return False
        due = time.monotonic() - self.committed_at >= self.settings.commit_interval
        return (due or full) and bool(
            self.uncommitted or self.unacked or self.tables.cached.dirty)

    async def commit(self, wait: bool = True) -> None:
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
        self.tables.cached.flush()
        last: dict[TopicPartition, asyncio.Future[Any]] = {}
        writes: list[tuple[Changelogged, dict[str, bytes | None]]] = []
        for table in self.tables.by_name.values():
            taken = table.take_pending()
            writes.append((table, taken))
            for key, value in taken.items():
                p = partition_of(key, self.settings.partitions)
                last[TopicPartition(table.topic, p)] = await self.send(table.topic, key, value, p)
        acks, self.unacked = self.unacked, []
        finish = self._in_time(self._finish(done, acks, self.ownership.take_sent(), writes,
                                            last))
        if wait or self.exactly_once:
            try:
                await finish
            except BaseException as exc:
                self.failed = exc
                raise
        else:
            self.committing = asyncio.ensure_future(finish)

    async def _in_time(self, finish: Coroutine[Any, Any, None]) -> None:
        """The broker has `broker_timeout` to acknowledge and commit: past it the worker starts
        over (engine/runtime/kafka/faults.py) instead of waiting on a broker that is away."""
        timeout = self.settings.broker_timeout
        try:
            await asyncio.wait_for(finish, timeout)
        except TimeoutError:
            raise BrokerUnreachable(f"a commit was not acknowledged within {timeout:.0f}s "
                                    "(KAIROS_BROKER_TIMEOUT)") from None

    def cancel(self) -> None:
        """A failed worker: the commit in flight must not land (nor touch the tables), and
        no later one either. Under exactly-once the open transaction may hold outputs whose
        offsets the failed commit took and never sent: committing it would publish them
        without their offsets, and the next worker would decide them again."""
        if self.committing is not None:
            self.committing.cancel()
            self.committing = None
        self.failed = CommitError("the worker was abandoned")

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

    async def _finish(
        self,
        done: dict[TopicPartition, int],
        acks: list[asyncio.Future[Any]],
        caught_up: dict[TopicPartition, asyncio.Future[Any]],
        writes: list[tuple[Changelogged, dict[str, bytes | None]]],
        last: dict[TopicPartition, asyncio.Future[Any]],
    ) -> None:
        await self.producer.wait_acks(acks)
        self.ownership.acknowledged(caught_up)
        if self.exactly_once:
            await self._commit_transaction(done)
        elif done:
            try:
                await self.consumer.commit(done)
            except (CommitFailedError, IllegalStateError) as exc:  # lost them in a rebalance
                log.warning("offsets not committed (%s): the new owner re-reads them", exc)
        for table, taken in writes:
            table.persist(taken)
        checkpoints = self.tables.checkpoints
        for tp, ack in last.items():
            checkpoints.set(tp, ack.result().offset + 1)
        if last:
            checkpoints.save()

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
