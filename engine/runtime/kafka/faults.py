"""What a worker does when the broker goes away: which errors it rides out, which end it.

A send, an acknowledgement, a commit or a transaction that fails for a reason that passes by
itself (the broker restarting, a leader moving, a request timing out, the producer's delivery
timeout expiring) is *retriable*: the worker stops deciding, goes unready, drops what it holds
in memory without committing, waits for the broker, and starts over from the committed offsets
and its tables, exactly as a restarted process would: at-least-once re-decides with the same
action ids; exactly-once aborts the open transaction (the new producer fences the old one).
Only *fatal* errors, which no wait can cure, end the process, with one line saying what to fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    ProducerFenced,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedVersionError,
)

from engine.config import Settings
from engine.errors import BrokerUnreachable, CommitError, KairosError
from engine.obs.metrics import Metrics

log = logging.getLogger("kairos.worker")

PROBE_EVERY = 2.0  # seconds between two looks for the broker while it is away
FIXES: list[tuple[type[BaseException], str]] = [
    (TopicAuthorizationFailedError, "the cluster refuses this worker a topic: grant its "
     "principal read and write on the input, output, internal and changelog topics"),
    (GroupAuthorizationFailedError, "the cluster refuses this worker its consumer group: grant "
     "its principal access to the group named by KAIROS_APP_ID"),
    (ClusterAuthorizationFailedError, "the cluster refuses this worker a cluster operation "
     "(creating topics, idempotent writes): grant them or create the topics beforehand"),
    (TransactionalIdAuthorizationFailed, "the cluster refuses this worker its transactional "
     "id: grant it, or run with KAIROS_PROCESSING_GUARANTEE=at_least_once"),
    (ProducerFenced, "another worker writes with this worker's transactional id: each worker "
     "needs a data directory of its own (KAIROS_DATA_DIR)"),
    (UnsupportedVersionError, "the broker does not support a request this worker needs: run "
     "Kafka 3.x or later"),
]


class WorkerFatal(KairosError):
    """An error no wait for the broker can cure; the message says what to fix."""


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify(exc: BaseException) -> WorkerFatal | None:
    """A `WorkerFatal` for errors that end the worker; None for those it rides out.

    Anything else (a bug in the worker itself) is neither: the caller lets it propagate.
    """
    for cause in _chain(exc):
        for kind, fix in FIXES:
            if isinstance(cause, kind):
                return WorkerFatal(f"{type(cause).__name__}: {fix}")
    return None


def retriable(exc: BaseException) -> bool:
    """Errors that pass once the broker answers again."""
    return any(isinstance(c, KafkaError | OSError | TimeoutError | CommitError |
                          BrokerUnreachable) for c in _chain(exc))


class BrokerProbe:
    """Asks the broker for one topic's metadata every `PROBE_EVERY` s, so an idle worker
    notices an outage too (a busy one notices sooner, by its unacknowledged records).

    One topic the worker made (its internal contacts topic), not the whole cluster's: that
    answer grows with every topic of the cluster (about 10 ms of CPU on 600 partitions,
    against 0.4 ms for one topic).
    """

    def __init__(self, settings: Settings, producer: Any) -> None:
        self.timeout, self.producer = settings.broker_timeout, producer
        self.topic = settings.topics.internal["contacts"]
        self.answered = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._probe())

    def check(self) -> None:
        """Raises `BrokerUnreachable` once the broker has been silent for the timeout."""
        silent = time.monotonic() - self.answered
        if silent > self.timeout:
            raise BrokerUnreachable(f"no answer from the broker for {silent:.0f}s")

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _probe(self) -> None:
        while True:
            await asyncio.sleep(PROBE_EVERY)
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await asyncio.wait_for(self.producer.answer(self.topic), 2 * PROBE_EVERY)
                self.answered = time.monotonic()


class BrokerWatch:
    """The worker's view of the broker: logs each change once, keeps the counts in metrics."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.lost_at: float | None = None

    def lost(self, exc: BaseException) -> None:
        self.metrics.broker_up = 0
        self.metrics.worker_recoveries += 1
        self.lost_at = time.monotonic()
        log.warning("broker lost (%s: %s): not deciding, the uncommitted work is dropped; "
                    "looking for the broker every %.0fs", type(exc).__name__, exc, PROBE_EVERY)

    async def wait(self, stop: asyncio.Event) -> bool:
        """Until the broker answers (True) or `stop` is set (False)."""
        while not stop.is_set():
            if await self._answers():
                if self.lost_at is not None:
                    log.warning("broker back after %.1fs: rewinding to the committed offsets "
                                "and restoring the tables", time.monotonic() - self.lost_at)
                    self.lost_at = None
                self.metrics.broker_up = 1
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PROBE_EVERY)
        return False

    async def _answers(self) -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.bootstrap,
                                    request_timeout_ms=5000)
        try:
            await asyncio.wait_for(admin.start(), 10)
            await asyncio.wait_for(admin.list_topics(), 10)
            return True
        except (KafkaError, OSError, TimeoutError):
            return False
        finally:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await asyncio.wait_for(admin.close(), 5)
