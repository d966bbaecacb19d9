"""The console's Kafka source against the real broker: a worker's figures, contacts, live feed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

from engine.config import Settings
from engine.console import changelog_copy
from engine.console.changelog_copy import ChangelogCopy
from engine.console.kafka_source import KafkaSource
from engine.console.source import Sample
from engine.ops import explain
from engine.runtime import rule_updates
from engine.testing.kafka import Worker, free_port, produce
from tests.integration.journey import phase_one
from tests.integration.test_rule_deploy import RULE

pytestmark = pytest.mark.kafka


def console_settings(w: Worker, data_dir: Path, *urls: str) -> Settings:
    env = {k: v for k, v in w.env.items() if k.startswith("KAIROS_")}
    return Settings.from_env({**env, "KAIROS_DATA_DIR": str(data_dir),
                              "KAIROS_CONSOLE_METRICS": ",".join(urls)})


async def until(check: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    wanted = tuple(sorted(labels.items()))
    return next((s.value for s in samples if s.name == name and s.labels == wanted), None)


def test_a_worker_seen_through_the_console(worker: Worker, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    settings = console_settings(worker, tmp_path, worker.metrics_url(), dead)
    clickstream = worker.topics["clickstream"]

    async def first_look() -> int:
        source = KafkaSource(settings)
        await source.start()
        try:
            await asyncio.to_thread(produce, worker.bootstrap, [
                (worker.topics["actions"], b"k", b"not an action"),
                *((worker.topics[src], key, v) for src, key, v in phase_one("cora"))])
            await until(lambda: any(a.action.trigger_event_id == "cora-o1"
                                    for a in source.feed.recent()))
            assert source.undecodable == 1
            assert all(not a.shadow for a in source.feed.recent())

            got: list[Sample] = []

            async def scraped() -> bool:
                got[:] = await source.samples()
                return value(got, "kairos_events_consumed_total", topic=clickstream) == 4.0

            deadline = time.monotonic() + 30
            while not await scraped():
                assert time.monotonic() < deadline, got
                await asyncio.sleep(0.2)
            assert value(got, "kairos_console_scrape_up", url=worker.metrics_url()) == 1.0
            assert value(got, "kairos_console_scrape_up", url=dead) == 0.0
            lag = {(s.label("topic"), s.label("partition")) for s in got
                   if s.name == "kairos_consumer_lag"}
            assert {(clickstream, str(p)) for p in range(4)} <= lag
            assert len(lag) == 4 * len(settings.topics.inputs)

            identity, contacts = source.lookups()
            await until(lambda: explain.resolve("user:user-cora", identity, contacts))
            assert source.caught_up()
            assert value(await source.samples(), "kairos_console_copy_progress") == 1.0
            st = explain.resolve("email:cora@example.com", identity, contacts)
            assert st is not None and {"user:user-cora", "anon:anon-cora"} <= set(st.identifiers)
            assert "first-baby-purchase" in source.ruleset().rules
            return source.copy.applied
        finally:
            await source.stop()

    assert asyncio.run(first_look()) > 0
    worker.stop()  # the changelogs stop changing: a restart has nothing new to read

    async def restarted() -> int:
        source = KafkaSource(settings)
        await source.start()
        try:
            await until(source.caught_up)
            identity, contacts = source.lookups()
            st = explain.resolve("user:user-cora", identity, contacts)
            assert st is not None and "email:cora@example.com" in st.identifiers
            return source.copy.applied
        finally:
            await source.stop()

    asyncio.run(restarted())  # what the worker wrote after the first look had ended
    assert asyncio.run(restarted()) == 0


def test_the_copy_deletes_on_tombstones_and_reads_new_partitions(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changelog_copy, "DISCOVER_EVERY", 0.3)
    settings = Settings(broker=f"kafka://{kafka_bootstrap}", app_id=f"c{time.time_ns()}")
    topic = settings.topics.changelogs["identity"]

    async def go() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        copy = ChangelogCopy(settings, tmp_path)
        task = asyncio.create_task(copy.follow())
        try:
            await admin.create_topics([NewTopic(topic, 1, 1)])
            for key, v in ((b"user:a", b"c1"), (b"user:b", b"c2"), (b"user:a", None)):
                await producer.send_and_wait(topic, v, key=key, partition=0)
            lookup = copy.lookup("identity")
            await until(lambda: lookup("user:b") == b"c2")
            assert lookup("user:a") is None
            assert lookup(changelog_copy.OFFSET_PREFIX + "0") is None
            await admin.create_partitions({topic: NewPartitions(total_count=2)})
            while producer.client.cluster.partitions_for_topic(topic) != {0, 1}:
                await producer.client.force_metadata_update()
            await producer.send_and_wait(topic, b"c3", key=b"user:c", partition=1)
            await until(lambda: lookup("user:c") == b"c3")
            assert copy.caught_up() and copy.applied == 4
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            copy.close()
            await producer.stop()
            await admin.delete_topics([topic])
            await admin.close()

    asyncio.run(go())


def test_the_rules_are_the_last_deployed_bundle_and_follow_new_ones(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = Settings(broker=f"kafka://{kafka_bootstrap}", app_id=f"r{time.time_ns()}",
                        topic_rules=f"r{time.time_ns()}.rules", topic_actions=f"r{time.time_ns()}.actions",
                        data_dir=tmp_path / "console")
    rules = tmp_path / "rules"
    rules.mkdir()

    async def deploy(version: int) -> None:
        (rules / "hello.py").write_text(RULE.format(version=version))
        await rule_updates.publish(kafka_bootstrap, settings.topic_rules,
                                   rule_updates.make_bundle(rules))

    async def go() -> None:
        await rule_updates.ensure_rules_topic(kafka_bootstrap, settings.topic_rules, 1, 20)
        await deploy(1)
        source = KafkaSource(settings)
        assert "hello-page" not in source.ruleset().rules  # the directory, before start
        await source.start()
        try:
            assert source.ruleset().rules["hello-page"].version == 1
            await deploy(2)
            await until(lambda: source.ruleset().rules["hello-page"].version == 2)
        finally:
            await source.stop()

    asyncio.run(go())


def test_kairos_console_serves_the_pages_over_the_worker_group(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The command itself, as an SRE starts it: overview with lag, rules, a contact's story."""
    import base64
    import os
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from engine.sdk.ruleset import RuleSet
    from tests.helpers import ROOT

    worker = Worker(kafka_bootstrap, tmp_path / "worker").start()
    produce(worker.bootstrap, [(worker.topics[src], key, v) for src, key, v in phase_one("dana")])
    port = free_port()
    env = {**os.environ, **{k: v for k, v in worker.env.items() if k.startswith("KAIROS_")},
           "KAIROS_DATA_DIR": str(tmp_path / "console"), "KAIROS_CONSOLE_METRICS": worker.metrics_url(),
           "KAIROS_CONSOLE_USERS": "ops:ops-secret", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "console", "--http",
                             f"127.0.0.1:{port}"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    auth = "Basic " + base64.b64encode(b"ops:ops-secret").decode()

    def get(path: str, authorization: str | None = auth) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                         headers={"Authorization": authorization or ""})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def eventually(path: str, text: str) -> str:
        body = ""
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = get(path)
                if status == 200 and text in body:
                    return body
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, f"{path} never showed {text!r}: {body[-3000:]}"
            time.sleep(0.3)

    try:
        story = eventually("/console/contacts?q=email:dana@example.com", 'data-event="dana-o1"')
        assert "user:user-dana" in story and "d•••@example.com" in story  # masked for ops
        overview = eventually("/console/?fragment=1", "Consumer lag by topic")
        assert worker.topics["clickstream"] in overview and "answering" in overview
        rules = get("/console/rules")[1]
        for rule_id in RuleSet.load(worker.env.get("KAIROS_RULES_DIR", ROOT / "rules")).rules:
            assert f'data-rule="{rule_id}"' in rules
        assert get("/console", authorization=None)[0] == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        worker.stop()
