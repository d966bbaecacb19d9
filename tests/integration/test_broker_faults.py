"""Workers ride out the broker going away, under a CPU hog that keeps one core busy.

Two workers (one at-least-once, one exactly-once, each with its own group and topics) and one
broker of the test's own go through three faults in a row while the workers drain a backlog:
the broker restarted (in the middle of a commit or a transaction: commits run every 0.1 s),
stopped for 20 s, and stopped for 50 s (longer than the producer's 40 s delivery timeout).
After each fault each worker must still be alive and have decided every action of what was
sent so far: none lost, at-least-once repeating only the same action ids, exactly-once
repeating none; while the broker is away it is unready and writes a few log lines, not a
flood. Waits are bounded by progress, not fixed sleeps.
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
CHUNK = 6_000  # clickstream events sent before each fault
# Each outage is longer than the worker's broker timeout (10 s here), the second also longer
# than the producer's 40 s delivery timeout: that, not its exact length, is what each one tests.
FAULTS = (("broker restarted", 0.0), ("broker stopped 20 s", 20.0), ("broker stopped 50 s", 50.0))
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


class Watched:
    """One worker under the faults, with what it decided so far and a row per fault."""

    def __init__(self, kport: int, data_dir: Path, rules: Path, guarantee: str) -> None:
        self.guarantee = guarantee
        self.w = Worker(f"127.0.0.1:{kport}", data_dir, KAIROS_RULES_DIR=str(rules),
                        KAIROS_PROCESSING_GUARANTEE=guarantee, KAIROS_BROKER_TIMEOUT="10",
                        KAIROS_SESSION_TIMEOUT="6")
        self.rows: list[dict[str, Any]] = []
        self.lines_before = 0

    def decided(self) -> Counter[str]:
        values = consume(self.w.bootstrap, self.w.topics["actions"], lambda vs: False, timeout=2)
        return Counter(action_codec.decode(v).action_id for v in values)

    def send(self, chunk: list[Any]) -> None:
        produce(self.w.bootstrap, [(self.w.topics["clickstream"], r.key, r.value) for r in chunk])

    def log_lines(self) -> int:
        return len(self.w.log_path.read_text(errors="replace").splitlines())

    def alive(self) -> None:
        assert self.w.proc is not None and self.w.proc.poll() is None, self.w.log_tail()


@pytest.mark.timeout(1200)  # three outages (70 s of them) on a loaded machine
def test_workers_ride_out_broker_restarts_and_long_stops(tmp_path: Path) -> None:
    """An at-least-once and an exactly-once worker side by side, through the same faults."""
    rules = order_only_rules(tmp_path / "rules")
    chunks, wanted = chunks_and_wanted(rules)
    kport = free_port()
    broker("up", kport)
    workers = [Watched(kport, tmp_path / g, rules, g) for g in ("at_least_once", "exactly_once")]
    try:
        with cpu_hog():
            for x in workers:
                x.w.start()
            sent = 0
            for (fault, outage), chunk, want in zip(FAULTS, chunks, wanted, strict=False):
                for x in workers:
                    x.send(chunk)
                sent += len(chunk)
                for x in workers:
                    wait_for(lambda x=x, s=sent: consumed(x.w) >= s - CHUNK * 0.9, 120,
                             "the workers to be draining the backlog")
                    x.lines_before = x.log_lines()
                broker("down", kport)
                if outage:
                    for x in workers:
                        wait_for(lambda x=x: ready(x.w) == 503, 60, "the workers to go unready")
                    time.sleep(outage)  # the fault itself
                for x in workers:
                    x.alive()
                lines = [x.log_lines() - x.lines_before for x in workers]
                broker("up", kport)
                back = time.monotonic()
                for x, n in zip(workers, lines, strict=True):
                    wait_for(lambda x=x: ready(x.w) == 200, 180, "the workers to be ready again")
                    wait_for_progress(lambda x=x, want=want: len(set(x.decided()) & want),
                                      len(want), 60, f"actions after '{fault}'")
                    got = x.decided()
                    x.rows.append({"fault": fault, "guarantee": x.guarantee,
                                   "lost": len(want - set(got)),
                                   "repeated": sum(n - 1 for n in got.values()),
                                   "recovery_s": round(time.monotonic() - back, 1),
                                   "outage_log_lines": n})
            for x in workers:
                x.send(chunks[-1])
            for x in workers:
                wait_for_progress(lambda x=x: len(set(x.decided()) & wanted[-1]),
                                  len(wanted[-1]), 60, "actions after the last fault")
                x.alive()
            finals = [x.decided() for x in workers]
    finally:
        for x in workers:
            x.w.stop()
        broker("down", kport)
        print("\n" + "\n".join(json.dumps(r) for x in workers for r in x.rows))
    for x, got in zip(workers, finals, strict=True):
        assert set(got) == wanted[-1], f"{x.guarantee}: actions lost, or not the undisturbed run's"
        for row in x.rows:
            assert row["lost"] == 0, row
            assert row["outage_log_lines"] <= MAX_OUTAGE_LOG_LINES, row
            if x.guarantee == "exactly_once":
                assert row["repeated"] == 0, row
        if x.guarantee == "exactly_once":
            assert max(got.values()) == 1, "an action repeated under exactly-once"
