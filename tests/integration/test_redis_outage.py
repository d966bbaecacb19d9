"""The email connector rides out Redis going away: deliveries wait, then resume; nothing is
sent without its idempotency record, nothing twice, nothing lost. Under a CPU hog."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

from engine.model import actions as action_codec
from engine.model.events import iso
from engine.testing.kafka import Worker, free_port, produce
from tests.integration.faults import RedisServer, cpu_hog, wait_for, wait_for_progress
from tests.integration.servers import SmtpServer
from tests.integration.test_end_to_end import spawn, stop

pytestmark = [pytest.mark.kafka, pytest.mark.redis]
OUTAGE = 15.0  # seconds Redis stays down: the fault itself, not a wait (retries back off to 2 s)


def actions(n: int, batch: str) -> list[action_codec.Action]:
    now = time.time()
    return [action_codec.Action(
        action_id=f"{batch}-{uuid.uuid4().hex}", contact_id=f"c{batch}{i}", channel="email",
        action="win-back-offer", rule_id="r", rule_version=1, score=1.0, reason="t",
        trigger_event_id=f"e{i}", event_time=iso(now), decided_at=iso(now),
        expires_at=iso(now + 3600), recipient=f"{batch}{i}@example.com") for i in range(n)]


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


def test_redis_stopped_for_seconds_under_the_email_connector_loses_and_repeats_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    redis = RedisServer(free_port(), tmp_path / "redis").start()
    metrics_port = free_port()
    with SmtpServer() as smtp, cpu_hog():
        w = Worker(kafka_bootstrap, tmp_path / "w", KAIROS_REDIS_URL=redis.url,
                   KAIROS_SMTP_PORT=str(smtp.port),
                   KAIROS_CONNECT_METRICS_PORT=str(metrics_port))
        before, during = actions(150, "before"), actions(150, "during")
        produce(w.bootstrap, [(w.topics["actions"], a.contact_id.encode(),
                               action_codec.encode(a)) for a in before])
        connector = spawn(w, "connect", "email")
        try:
            wait_for(lambda: len(smtp.messages) >= 50, 60, "the first sends")
            redis.kill()  # mid-stream: some sends are in flight, the rest not begun
            produce(w.bootstrap, [(w.topics["actions"], a.contact_id.encode(),
                                   action_codec.encode(a)) for a in during])
            wait_for(lambda: metric(metrics_port, "kairos_deliveries_waiting_for_redis") > 0,
                     30, "deliveries waiting for Redis")
            held = len(smtp.messages)
            time.sleep(OUTAGE)
            assert connector.poll() is None, "the connector exited while Redis was away"
            assert metric(metrics_port, "kairos_connector_redis_up") == 0
            assert len(smtp.messages) <= held + 32, "sends went on without idempotency records"
            redis.start()
            wanted = {a.action_id for a in before + during}
            wait_for_progress(lambda: len(set(smtp.ids()) & wanted), len(wanted), 60,
                              "emails after Redis came back")
            wait_for(lambda: metric(metrics_port, "kairos_connector_redis_up") == 1, 30,
                     "the connector to see Redis back")
            assert connector.poll() is None
        finally:
            stop(connector)
            redis.kill()
    sent = Counter(smtp.ids())
    assert set(sent) == wanted, f"{len(wanted - set(sent))} actions never sent"
    assert [i for i, n in sent.items() if n > 1] == [], "sent twice"
