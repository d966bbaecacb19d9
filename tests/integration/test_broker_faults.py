"""A worker rides out the broker going away, under a CPU hog that keeps one core busy.

One worker, one broker of the test's own, three faults in a row while the worker drains a
backlog: the broker restarted (in the middle of a commit or a transaction: commits run every
0.1 s), stopped for 30 s, and stopped for 90 s (longer than the producer's 40 s delivery
timeout); at-least-once and exactly-once. After each fault the worker must still be alive and
have decided every action of what was sent so far: none lost, at-least-once repeating only the
same action ids, exactly-once repeating none; while the broker is away it is unready and
writes a few log lines, not a flood. Waits are bounded by progress, not fixed sleeps.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine.core.policy import Policy
from engine.model import actions as action_codec
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet
from engine.testing.kafka import UNLIMITED_POLICY, Worker, consume, free_port, produce
from load_tests.traffic import Traffic
from tests.helpers import order_only_rules
from tests.integration.faults import cpu_hog, wait_for, wait_for_progress
from tests.integration.test_broker_loss import broker

pytestmark = pytest.mark.kafka
CHUNK = 10_000  # clickstream events sent before each fault
FAULTS = (("broker restarted", 0.0), ("broker stopped 30 s", 30.0), ("broker stopped 90 s", 90.0))
MAX_OUTAGE_LOG_LINES = 100  # the worker's lines while the broker is away (was 266,000 in 40 s)


def ready(w: Worker) -> int:
    try:
        url = f"http://127.0.0.1:{w.env['KAIROS_WEB_PORT']}/ready"
        return int(urllib.request.urlopen(url, timeout=2).status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def consumed(w: Worker) -> float:
    """Input events the worker has consumed, from its own metrics."""
    try:
        text = urllib.request.urlopen(w.metrics_url(), timeout=2).read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("kairos_events_consumed_total"))


def chunks_and_wanted(rules: Path) -> tuple[list[list[Any]], list[set[str]]]:
    """The events sent before each fault (and a last chunk after them all), and every action
    id an undisturbed run decides once each chunk is in."""
    traffic = (r for r in Traffic(contacts=1_500, seed=9) if r.topic == "clickstream")
    chunks = [list(itertools.islice(traffic, CHUNK)) for _ in range(len(FAULTS) + 1)]
    decided: list[action_codec.Action] = []
    runtime = EmbeddedRuntime(Pipeline(RuleSet.load(rules), Policy.load(UNLIMITED_POLICY)),
                              on_action=decided.append, clock="wall")
    wanted = []
    for chunk in chunks:
        for r in chunk:
            runtime.submit(r.value, "clickstream")
        wanted.append({a.action_id for a in decided})
    return chunks, wanted


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_worker_rides_out_broker_restarts_and_long_stops(
    tmp_path: Path, guarantee: str
) -> None:
    rules = order_only_rules(tmp_path / "rules")
    chunks, wanted = chunks_and_wanted(rules)
    kport = free_port()
    broker("up", kport)
    w = Worker(f"127.0.0.1:{kport}", tmp_path / "w", KAIROS_RULES_DIR=str(rules),
               KAIROS_PROCESSING_GUARANTEE=guarantee, KAIROS_BROKER_TIMEOUT="10",
               KAIROS_SESSION_TIMEOUT="6")

    def decided() -> Counter[str]:
        values = consume(w.bootstrap, w.topics["actions"], lambda vs: False, timeout=2)
        return Counter(action_codec.decode(v).action_id for v in values)

    def send(chunk: list[Any]) -> None:
        produce(w.bootstrap, [(w.topics["clickstream"], r.key, r.value) for r in chunk])

    rows = []
    try:
        with cpu_hog():
            w.start()
            sent = 0
            for (fault, outage), chunk, want in zip(FAULTS, chunks, wanted, strict=False):
                send(chunk)
                sent += len(chunk)
                wait_for(lambda s=sent: consumed(w) >= s - CHUNK * 0.9, 120,
                         "the worker to be draining the backlog")
                lines_before = len(w.log_path.read_text(errors="replace").splitlines())
                broker("down", kport)
                if outage:
                    wait_for(lambda: ready(w) == 503, 60, "the worker to go unready")
                    time.sleep(outage)  # the fault itself
                assert w.proc is not None and w.proc.poll() is None, w.log_tail()
                lines = len(w.log_path.read_text(errors="replace").splitlines()) - lines_before
                broker("up", kport)
                back = time.monotonic()
                wait_for(lambda: ready(w) == 200, 180, "the worker to be ready again")
                wait_for_progress(lambda want=want: len(set(decided()) & want),
                                  len(want), 60, f"actions after '{fault}'")
                got = decided()
                rows.append({"fault": fault, "guarantee": guarantee,
                             "lost": len(want - set(got)),
                             "repeated": sum(n - 1 for n in got.values()),
                             "recovery_s": round(time.monotonic() - back, 1),
                             "outage_log_lines": lines})
            send(chunks[-1])
            wait_for_progress(lambda: len(set(decided()) & wanted[-1]), len(wanted[-1]), 60,
                              "actions after the last fault")
            assert w.proc.poll() is None, w.log_tail()
            got = decided()
    finally:
        w.stop()
        broker("down", kport)
        print("\n" + "\n".join(json.dumps(r) for r in rows))
    assert set(got) == wanted[-1], "actions lost, or decided that the undisturbed run did not"
    for row in rows:
        assert row["lost"] == 0, row
        assert row["outage_log_lines"] <= MAX_OUTAGE_LOG_LINES, row
        if guarantee == "exactly_once":
            assert row["repeated"] == 0, row
    if guarantee == "exactly_once":
        assert max(got.values()) == 1, "an action repeated under exactly-once"
