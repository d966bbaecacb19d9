"""Topic creation: a worker group creates what it needs on first start, quietly.

On a fresh cluster the clients would otherwise start before the topics (and the group
coordinator) are ready, and log an error per metadata refresh until they are. Instead each
missing topic is logged once as it is created, and the start waits until every partition
created has a leader and the group has a coordinator: then the clients find all of it at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    NotCoordinatorError,
    TopicAlreadyExistsError,
    for_code,
)

from engine.config import Settings
from engine.errors import BrokerUnreachable
from engine.runtime import rule_updates

__all__ = ["create_missing", "ensure_topics"]

log = logging.getLogger("kairos.worker")
POLL = 0.2  # seconds between two looks at a topic's leaders or the group's coordinator
_NOT_YET = (CoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError)


async def ensure_topics(settings: Settings) -> None:
    """Create the topics the group needs if the cluster lacks them; changelogs compacted."""
    n, rf = settings.partitions, settings.replication_factor
    plain, compacted = settings.topics.created()
    wanted = [NewTopic(t, n, rf) for t in plain]
    wanted += [NewTopic(t, n, rf, topic_configs={"cleanup.policy": "compact"}) for t in compacted]
    wanted.append(rule_updates.rules_topic(settings.topic_rules, rf))
    await create_missing(settings.bootstrap, wanted, settings.broker_timeout, settings.app_id)


async def create_missing(bootstrap: str, wanted: list[NewTopic], timeout: float,
                         group: str | None = None) -> None:
    """Create what of `wanted` is missing (one line each), then wait, at most `timeout` s,
    for their leaders and `group`'s coordinator. A topic the cluster refuses raises its error
    (an authorization error ends the worker, engine/runtime/kafka/faults.py)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        for t in missing:
            compact = t.topic_configs.get("cleanup.policy") == "compact"
            log.info("topic %s missing: creating it (%d partitions%s)", t.name,
                     t.num_partitions, ", compacted" if compact else "")
        deadline = time.monotonic() + timeout
        if missing:
            response = await admin.create_topics(missing)
            for name, code, *message in response.topic_errors:
                error = for_code(code)
                if code and error is not TopicAlreadyExistsError:  # another worker was faster
                    raise error(f"topic {name} not created: {message[-1] if message else ''}")
            await _until_led(admin, {t.name for t in missing}, deadline)
            await _until_answering(bootstrap, missing, deadline)
        if group is not None:
            await _until_coordinated(admin, group, deadline)
    finally:
        await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, names: set[str], deadline: float) -> None:
    """Every partition of `names` has a leader: a client asking now finds them."""
    while True:
        topics = await admin.describe_topics(sorted(names))
        if all(t["error_code"] == 0 and t["partitions"]
               and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
               for t in topics):
            return
        if time.monotonic() > deadline:
            raise BrokerUnreachable(f"topics {sorted(names)} created but without leaders")
        await asyncio.sleep(POLL)


async def _until_answering(bootstrap: str, created: list[NewTopic], deadline: float) -> None:
    """Every created partition's leader answers for its offsets. A leader in the metadata may
    still refuse for a moment (`NotLeaderForPartition`): the clients would log each refusal as
    an error, this reader retries them quietly."""
    left = max(deadline - time.monotonic(), 1.0)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                              request_timeout_ms=int(left * 1000))
    await reader.start()
    try:
        await reader.end_offsets([TopicPartition(t.name, p)
                                  for t in created for p in range(t.num_partitions)])
    finally:
        await reader.stop()


async def _until_coordinated(admin: AIOKafkaAdminClient, group: str, deadline: float) -> None:
    """The group has a coordinator (a fresh cluster creates its offsets topic first)."""
    waited = False
    while True:
        try:
            await admin.find_coordinator(group)
            return
        except _NOT_YET as exc:
            if time.monotonic() > deadline:
                raise BrokerUnreachable(f"no coordinator for group {group}: {exc}") from exc
            if not waited:
                log.info("waiting for the cluster to elect a coordinator for group %s", group)
                waited = True
        await asyncio.sleep(POLL)
