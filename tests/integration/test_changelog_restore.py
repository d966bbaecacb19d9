"""Restoring changelog partitions reads every record of every partition asked for.

Regression: with aiokafka's default `latest` reset, a freshly assigned partition could be reset
to its end after our seek to the beginning, and a worker silently started from an empty table."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from engine.config import Settings
from engine.runtime.kafka.admin import ensure_topics
from engine.runtime.kafka.assignment import restore
from engine.runtime.kafka.tables import Tables
from engine.storage.changelog import partition_of
from engine.testing.kafka import produce

pytestmark = pytest.mark.kafka


def test_every_record_of_every_partition_is_restored(kafka_bootstrap: str, tmp_path: Path) -> None:
    app = f"r{uuid.uuid4().hex[:8]}"
    settings = Settings(broker=f"kafka://{kafka_bootstrap}", app_id=app, data_dir=tmp_path / "x",
                        topic_rules=f"{app}.rules")
    asyncio.run(ensure_topics(settings))
    keys = [f"c{i:05d}" for i in range(4_000)]
    topic = f"{app}-contacts-changelog"
    produce(kafka_bootstrap, [(topic, k.encode(), f"state of {k}".encode()) for k in keys])
    for attempt in range(5):  # the race was timing-dependent: try it several times
        fresh = settings.__class__(**{**{f: getattr(settings, f) for f in
                                         settings.__struct_fields__},
                                      "data_dir": tmp_path / f"w{attempt}"})
        tables = Tables(fresh, on_encoded=lambda size: None)
        try:
            asyncio.run(restore(fresh, tables, "contacts", {0, 1, 2, 3}))
            table = tables.contacts
            missing = [k for k in keys if table.get(k) != f"state of {k}".encode()]
            assert not missing, f"attempt {attempt}: {len(missing)} keys missing, e.g. " \
                f"{missing[:3]} (partitions {sorted({partition_of(k, 4) for k in missing})})"
        finally:
            tables.close()
