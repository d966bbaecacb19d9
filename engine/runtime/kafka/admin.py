"""Topic creation: a worker group creates what it needs on first start."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from engine.config import Settings
from engine.runtime import rule_updates


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
    await rule_updates.ensure_rules_topic(settings.bootstrap, settings.topic_rules,
                                          settings.replication_factor)
