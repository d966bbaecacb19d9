"""A commit that finished in the background and failed must stop every later commit: offsets
committed past records whose outputs were never acknowledged would lose those records."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError

from engine.config import Settings
from engine.pipeline import Pipeline
from engine.runtime.kafka.worker import StreamWorker
from engine.sdk.ruleset import RuleSet


def test_a_failed_background_commit_stops_every_later_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        worker = StreamWorker(Settings.from_env({"KAIROS_DATA_DIR": str(tmp_path)}),
                              Pipeline(RuleSet([])))
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
        await worker.consumer.stop()  # never started: nothing to leave, only to close
        await worker.producer.stop()
        worker.close()

    asyncio.run(scenario())
