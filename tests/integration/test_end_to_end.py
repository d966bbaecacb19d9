"""Everything together on the real broker and Redis: the Segment library posts to `kairos
collect`, a worker decides, `kairos connect` delivers to a real SMTP server and to Redis, and the
outcomes flow back into the engine. Then a connector is killed mid-batch."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from connectors.connect import CONCURRENCY
from engine.model import actions as action_codec
from engine.model import deadletter
from engine.model.events import iso
from engine.testing.kafka import Worker, consume, free_port, produce
from tests.helpers import ROOT
from tests.integration.servers import HttpServer, SmtpServer

pytestmark = [pytest.mark.kafka, pytest.mark.redis]
KEY = "wk_e2e"


def spawn(worker: Worker, *args: str, **env: str) -> subprocess.Popen[bytes]:
    worker.data_dir.mkdir(parents=True, exist_ok=True)
    log = (worker.data_dir / f"{args[0]}-{uuid.uuid4().hex[:6]}.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "engine.cli", *args], cwd=ROOT,
                            env={**worker.env, **env}, stdout=log, stderr=subprocess.STDOUT)


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_segment_library_to_smtp_and_redis_and_back(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    from segment.analytics import Client

    with SmtpServer() as smtp:
        w = Worker(kafka_bootstrap, tmp_path / "w", KAIROS_WRITE_KEYS=KEY,
                   KAIROS_REDIS_URL=redis_url, KAIROS_SMTP_PORT=str(smtp.port))
        w.start()
        port = free_port()
        collector = spawn(w, "collect", "--http", f"127.0.0.1:{port}")
        connector = spawn(w, "connect", "email", "web")
        try:
            wait_until(lambda: _up(port), 30, "the collector")
            client = Client(KEY, host=f"http://127.0.0.1:{port}", max_retries=3)
            user = f"e2e-{uuid.uuid4().hex[:6]}"
            client.identify(user, {"email": f"{user}@example.com",
                                   "consent": {"email": True}})
            client.track(user, "Order Completed", {"products": [{"category": "books"}]})
            client.flush()
            client.shutdown()
            wait_until(lambda: smtp.messages, 60, "the email")
            [msg] = smtp.messages
            assert msg["To"] == f"{user}@example.com"
            action = action_codec.decode(consume(
                w.bootstrap, w.topics["actions"], lambda vs: len(vs) >= 1)[0])
            assert msg["X-Kairos-Action-Id"] == action.action_id
            outcomes = consume(w.bootstrap, w.topics["outcomes"],
                               lambda vs: any(b'"sent"' in v for v in vs), timeout=30)
            assert any(orjson.loads(v)["action_id"] == action.action_id for v in outcomes)
            # The engine consumed the outcome: the loop is closed.
            wait_until(lambda: _metric(w, "outcomes") >= 1, 30, "the outcome in the engine")
        finally:
            stop(connector)
            stop(collector)
            w.stop()


def _up(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).status == 200
    except OSError:
        return False


def _metric(w: Worker, topic_suffix: str) -> float:
    text = urllib.request.urlopen(w.metrics_url(), timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith("kairos_events_consumed_total") and topic_suffix in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def in_doubt(w: Worker) -> set[str]:
    """Ids of the actions the connectors dead-lettered as in doubt."""
    letters = [deadletter.decode(v) for v in consume(
        w.bootstrap, w.topics["dead"], lambda vs: False, timeout=1.5)]
    return {action_codec.decode(d.original()).action_id for d in letters
            if d.reason.startswith("in doubt")}


def test_a_connector_killed_mid_batch_never_sends_twice_and_loses_nothing(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    with SmtpServer() as smtp:
        w = Worker(kafka_bootstrap, tmp_path / "w", KAIROS_REDIS_URL=redis_url,
                   KAIROS_SMTP_PORT=str(smtp.port))
        now = time.time()
        actions = [action_codec.Action(
            action_id=f"kill-{uuid.uuid4().hex}", contact_id=f"c{i}", channel="email",
            action="win-back-offer", rule_id="r", rule_version=1, score=1.0, reason="t",
            trigger_event_id=f"e{i}", event_time=iso(now), decided_at=iso(now),
            expires_at=iso(now + 3600), recipient=f"k{i}@example.com") for i in range(300)]
        produce(w.bootstrap, [(w.topics["actions"], a.contact_id.encode(), action_codec.encode(a))
                              for a in actions])
        want = {a.action_id for a in actions}
        connector = spawn(w, "connect", "email")
        try:
            wait_until(lambda: len(smtp.messages) >= 60, 60, "the first sends")
            connector.send_signal(signal.SIGKILL)  # mid-batch: offsets not committed
            connector.wait(10)
            killed_at = len(smtp.messages)
            time.sleep(1)
            connector = spawn(w, "connect", "email")
            wait_until(lambda: set(smtp.ids()) | in_doubt(w) >= want, 120, "every action handled")
            time.sleep(2)  # anything sent twice would arrive now
        finally:
            stop(connector)
    ids = smtp.ids()
    assert 60 <= killed_at < 300
    assert len(ids) == len(set(ids))  # none twice
    # What was in flight at the kill is in doubt: not resent, kept as a dead letter instead.
    doubtful = in_doubt(w)
    assert len(doubtful) <= CONCURRENCY
    assert set(ids) | doubtful == want  # none lost


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _lag(w: Worker, group: str) -> int:
    async def go() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=w.bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=w.bootstrap)
        await admin.start()
        await consumer.start()
        try:
            committed = await admin.list_consumer_group_offsets(group)
            [topic] = await admin.describe_topics([w.topics["actions"]])
            tps = [TopicPartition(w.topics["actions"], p["partition"])
                   for p in topic["partitions"]]
            ends = await consumer.end_offsets(tps)
            return sum(end - (committed[tp].offset if tp in committed else 0)
                       for tp, end in ends.items())
        finally:
            await consumer.stop()
            await admin.close()

    return asyncio.run(go())


def test_a_slow_provider_means_visible_lag_and_bounded_memory_not_a_crash(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """A provider answering in 0.5 s caps the connector at concurrency/0.5 sends a second: the
    backlog waits in Kafka (lag, visible to the group) instead of in the connector's memory."""
    with HttpServer() as provider:
        provider.delay = 0.5
        w = Worker(kafka_bootstrap, tmp_path / "w", KAIROS_REDIS_URL=redis_url,
                   KAIROS_SMS_URL=provider.url + "/sms")
        now = time.time()
        padding = "x" * 2_000  # 4,000 actions of ~2.5 KB: 10 MB waiting
        produce(w.bootstrap, [(w.topics["actions"], f"c{i}".encode(), action_codec.encode(
            action_codec.Action(
                action_id=f"slow-{uuid.uuid4().hex}", contact_id=f"c{i}", channel="sms",
                action="re-engage", rule_id="r", rule_version=1, score=1.0, reason="t",
                trigger_event_id=f"e{i}", event_time=iso(now), decided_at=iso(now),
                expires_at=iso(now + 3600), recipient="+33600000000",
                payload={"text": padding}))) for i in range(4_000)])
        metrics_port = free_port()
        connector = spawn(w, "connect", "sms", KAIROS_CONNECT_METRICS_PORT=str(metrics_port))
        group = f"{w.prefix}-connect-sms"
        rss, lags = [], []
        try:
            for _ in range(12):
                time.sleep(1.5)
                assert connector.poll() is None, "the connector died"
                rss.append(_rss_mb(connector.pid))
                lags.append(_lag(w, group))
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                             timeout=5).read().decode()
        finally:
            stop(connector)
    sent = len(provider.requests)
    print(f"slow provider: {sent} sent in 18 s, lag {lags}, connector RSS MB {rss}")
    assert 0 < sent < 4_000  # slow: most of the backlog still waits
    assert lags[-1] > 2_000 and lags[-1] <= lags[2]  # visible, and going down, not up
    assert max(rss) < 250, rss  # megabytes: the backlog is not pulled into memory
    assert max(rss[4:]) - min(rss[4:]) < 40, rss  # flat once warm
    sent_metric = re.search(r'kairos_deliveries_total\{channel="sms",outcome="sent"\} (\S+)',
                            metrics)
    assert sent_metric and 0 < float(sent_metric.group(1)) <= sent  # what the SRE sees
    assert 'kairos_breaker_open{provider="http:' in metrics
