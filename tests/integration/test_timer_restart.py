"""A pending timer survives a restart and fires once, in both runtimes."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from engine.core.policy import Policy
from engine.model import actions as action_codec
from engine.model.actions import Action
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet
from engine.testing.kafka import UNLIMITED_POLICY, Worker, consume, produce
from engine.topics import changelog
from tests.integration.journey import T0
from tests.integration.timer_rule import page_view, timer_rules


def embedded(rules: Path, data: Path, into: list[Action]) -> EmbeddedRuntime:
    pipeline = Pipeline(RuleSet.load(rules), Policy.load(UNLIMITED_POLICY))
    return EmbeddedRuntime(pipeline, data_dir=data, on_action=into.append)


def test_the_embedded_runtime_fires_a_timer_scheduled_before_it_was_closed(
    tmp_path: Path,
) -> None:
    rules = timer_rules(tmp_path / "rules", after=600)
    fired: list[Action] = []
    first = embedded(rules, tmp_path / "data", fired)
    first.submit(page_view("restart-1", T0))
    first.tick(T0 + 599)
    first.close()
    assert fired == []  # scheduled, not due yet
    second = embedded(rules, tmp_path / "data", fired)
    second.tick(T0 + 601)
    second.tick(T0 + 1200)  # a later tick does not fire it again
    second.close()
    assert [(a.rule_id, a.action, a.payload) for a in fired] == [
        ("ping-later", "ping", {"page": "/wait"})]
    assert fired[0].decided_at.startswith("2026-09-21")  # at its due, in event time


@pytest.mark.kafka
def test_the_kafka_worker_fires_a_timer_scheduled_before_it_was_killed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rules = timer_rules(tmp_path / "rules", after=8)
    # The killed process cannot leave the group: its restart waits out the session timeout.
    w = Worker(kafka_bootstrap, tmp_path / "w", KAIROS_RULES_DIR=str(rules),
               KAIROS_SESSION_TIMEOUT="6").start()
    try:
        sent = time.time()
        produce(w.bootstrap, [(w.topics["clickstream"], b"anon-ping",
                               page_view("kill-1", sent))])
        # Decided and its state (the timer in it) written out well before due, then a crash
        # with no shutdown and no last commit.
        states = consume(w.bootstrap, changelog(w.prefix, "contacts"),
                         lambda vs: any(b"kill-1" in v for v in vs), timeout=20)
        assert any(b"kill-1" in v for v in states), w.log_tail()
        assert time.time() < sent + 6  # still pending at the crash
        w.kill9()
        w.start()
        consume(w.bootstrap, w.topics["actions"], lambda vs: any(b'"ping"' in v for v in vs),
                timeout=60)
        time.sleep(2)  # a second firing would be there by now
        got = [action_codec.decode(v) for v in consume(
            w.bootstrap, w.topics["actions"], lambda vs: False, timeout=3)]
    finally:
        w.stop()
    pings = [a for a in got if a.action == "ping"]
    assert len(pings) == 1, w.log_tail()
    assert pings[0].payload == {"page": "/wait"} and pings[0].rule_id == "ping-later"
    assert datetime.fromisoformat(pings[0].decided_at).timestamp() >= sent + 8  # once due
