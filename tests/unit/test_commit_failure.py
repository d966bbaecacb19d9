"""A commit that finished in the background and failed must stop every later commit: offsets
committed past records whose outputs were never acknowledged would lose those records."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError

from engine.config import Settings
from engine.pipeline import Pipeline
from engine.runtime.kafka.clients import MAX_BATCH, Producer
from engine.runtime.kafka.worker import StreamWorker
from engine.sdk.ruleset import RuleSet


@contextlib.asynccontextmanager
async def unstarted_worker(tmp_path: Path, **env: str) -> AsyncIterator[StreamWorker]:
    """A worker whose clients never start: its commits are driven by hand, then it closes."""
    worker = StreamWorker(Settings.from_env({"KAIROS_DATA_DIR": str(tmp_path), **env}),
                          Pipeline(RuleSet([])))
    try:
        yield worker
    finally:
        await worker.consumer.stop()  # never started: nothing to leave, only to close
        await worker.producer.stop()
        worker.close()


def test_a_failed_background_commit_stops_every_later_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with unstarted_worker(tmp_path) as worker:
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(KafkaTimeoutError("acks never came"))
            commits = worker.commits
            commits.committing = failed
            read = {TopicPartition("clickstream", 0): 10}
            commits.uncommitted = dict(read)
            with pytest.raises(KafkaTimeoutError):
                await commits.commit(wait=False)
            with pytest.raises(RuntimeError, match="earlier commit failed"):
                await commits.commit()  # the final commit on the way out too
            assert commits.uncommitted == read  # never handed to a commit: re-read after restart

    asyncio.run(scenario())


class Recorder:
    """A producer that records the transaction calls made of it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def wait_acks(self, acks: list[object]) -> None:
        self.calls.append("wait_acks")

    async def send_offsets_to_transaction(self, offsets: object, group: str) -> None:
        self.calls.append("send_offsets_to_transaction")

    async def commit_transaction(self) -> None:
        self.calls.append("commit_transaction")


def test_an_abandoned_worker_never_commits_its_open_transaction(tmp_path: Path) -> None:
    """Its failed commit took the offsets and never sent them: committing the transaction
    later (a rebalance callback run while its consumer closes) would publish its actions
    without their offsets, and the next worker would decide them again."""
    async def scenario() -> None:
        async with unstarted_worker(tmp_path, KAIROS_PROCESSING_GUARANTEE="exactly_once") as w:
            commits = w.commits
            commits.producer = Recorder()
            commits.in_transaction = True  # the actions of the failed commit are in it
            commits.cancel()
            with pytest.raises(RuntimeError, match="earlier commit failed"):
                await commits.commit()
            assert commits.producer.calls == []

    asyncio.run(scenario())


def test_a_failed_transaction_commit_stops_every_later_commit(tmp_path: Path) -> None:
    """A commit that failed after taking the offsets (a rebalance's, whose failure the
    listener rides out) must not let the next commit carry its transaction on."""
    class Failing(Recorder):
        async def wait_acks(self, acks: list[object]) -> None:
            raise KafkaTimeoutError("acks never came")

    async def scenario() -> None:
        async with unstarted_worker(tmp_path, KAIROS_PROCESSING_GUARANTEE="exactly_once") as w:
            commits = w.commits
            commits.producer = Failing()
            commits.in_transaction = True
            commits.uncommitted = {TopicPartition("clickstream", 0): 10}
            with pytest.raises(KafkaTimeoutError, match="acks never came"):
                await commits.commit()
            commits.producer = Recorder()
            with pytest.raises(RuntimeError, match="earlier commit failed"):
                await commits.commit()
            assert commits.producer.calls == []

    asyncio.run(scenario())


def test_waiting_for_acks_waits_for_each_and_raises_the_first_failure() -> None:
    """A commit awaits every ack before the offsets: one still in flight is waited for, and a
    failed one stops the commit."""
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        producer = Producer(bootstrap_servers="127.0.0.1:1")
        done, late = loop.create_future(), loop.create_future()
        done.set_result(1)
        loop.call_later(0.05, late.set_result, 2)
        await producer.wait_acks([done, late])
        assert late.done()
        failed = loop.create_future()
        failed.set_exception(KafkaTimeoutError("ack lost"))
        with pytest.raises(KafkaTimeoutError, match="ack lost"):
            await producer.wait_acks([done, failed, late])
        await producer.stop()

    asyncio.run(scenario())


def test_an_interval_commit_waits_while_one_is_in_flight_and_a_full_one_does_not(
        tmp_path: Path) -> None:
    """Starting it would first wait for the one in flight, and hold up the records behind;
    past a batch's worth it must start anyway (uncommitted records stay within what a state
    remembers as seen)."""
    async def scenario() -> None:
        async with unstarted_worker(tmp_path) as worker:
            commits = worker.commits
            commits.uncommitted = {TopicPartition("clickstream", 0): 10}
            commits.committed_at -= 10 * worker.settings.commit_interval  # an interval is due
            assert commits.due()
            in_flight: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            commits.committing = in_flight
            assert not commits.due()
            commits.consumed_since_commit = MAX_BATCH  # a full batch: no waiting
            assert commits.due()
            commits.consumed_since_commit = 0
            in_flight.set_result(None)  # settled: the interval's commit goes ahead
            assert commits.due()

    asyncio.run(scenario())
