"""A worker on a cluster lacking its topics starts quietly, then decides; its actions carry
CloudEvents headers that the `cloudevents` library reads back, under either guarantee."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

from engine.model import actions as action_codec
from engine.testing.kafka import Worker
from tests.integration.journey import phase_one
from tests.integration.records import read_records, send_records

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_fresh_worker_logs_one_line_per_missing_topic_and_sends_cloudevents(
    kafka_bootstrap: str, tmp_path: Path, guarantee: str,
) -> None:
    w = Worker(kafka_bootstrap, tmp_path, KAIROS_PROCESSING_GUARANTEE=guarantee).start()
    try:
        started = w.log_path.read_text()
        send_records(w.bootstrap, [(w.topics[src], key, value, [], None)
                                   for src, key, value in phase_one("ce")])
        records = read_records(w.bootstrap, w.topics["actions"], lambda rs: any(
            action_codec.decode(r.value).trigger_event_id == "ce-o1" for r in rs))
    finally:
        w.stop()
    assert " ERROR " not in started and " WARNING " not in started, started
    topics = [t for key, t in w.topics.items() if key != "crm"]  # crm: the connectors' own
    topics += [f"{w.prefix}-{t}" for t in ("identity", "contacts", "items", "identity-changelog",
                                           "contacts-changelog", "items-changelog")]
    complaints = [line for line in started.splitlines()
                  if re.search(r"not found|missing|unknown|not ?leader|not available", line, re.I)]
    for topic in topics:
        assert sum(f"topic {topic} missing: creating it" in c for c in complaints) == 1, topic
    assert len(complaints) == len(topics), complaints

    assert records, w.log_tail()
    for r in records:
        action = action_codec.decode(r.value)
        event = from_binary(KafkaMessage(dict(r.headers), r.key, r.value), JSONFormat())
        assert r.key == action.contact_id.encode()
        assert event.get_id() == action.action_id
        assert event.get_type() == f"io.kairos.action.{action.channel}"
        assert event.get_source() == f"kairos/{w.prefix}/{action.rule_id}"
        assert event.get_subject() == action.contact_id
        assert event.get_specversion() == "1.0"
        assert event.get_datacontenttype() == "application/json"
        assert event.get_time() == datetime.fromisoformat(action.decided_at)
        assert event.get_data() == orjson.loads(r.value)
