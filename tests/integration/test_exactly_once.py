"""Chaos on the real broker: a worker kill -9'd at random moments while it drains a backlog,
and workers joining, leaving and killed around rebalances under `exactly_once`.

Compared with an undisturbed run of the same events (the embedded runtime), the actions read
with `read_committed` on `next-best-actions` must be the same set: none missing. With
`exactly_once` (Kafka transactions) none may appear twice either; with the default
at-least-once a redelivered event re-emits its action under the same id, which the connectors'
idempotency then sends once (tests/integration/test_end_to_end.py).
"""

from __future__ import annotations

import collections
import itertools
import random
import time
from pathlib import Path

import pytest

from engine.core.policy import Policy
from engine.model import actions as action_codec
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet
from engine.testing.kafka import UNLIMITED_POLICY, Worker, consume, produce
from load_tests.traffic import Record, Traffic
from tests.helpers import order_only_rules

pytestmark = pytest.mark.kafka
EVENTS = 40_000
KILLS = 2  # the first lands inside the backlog (asserted), the second in its rest
# A killed worker cannot leave its group: its successor waits this long for its partitions.
FAST = {"KAIROS_SESSION_TIMEOUT": "6"}


def backlog(tmp_path: Path, seed: int) -> tuple[list[Record], Path, set[str]]:
    """The events, the rules, and the action ids an undisturbed run of them decides.

    One topic keyed by user: each contact's order is fixed, so decisions are deterministic.
    """
    traffic = (r for r in Traffic(contacts=3_000, seed=seed) if r.topic == "clickstream")
    records = list(itertools.islice(traffic, EVENTS))
    rules = order_only_rules(tmp_path / "rules")
    undisturbed: list[action_codec.Action] = []
    runtime = EmbeddedRuntime(Pipeline(RuleSet.load(rules), Policy.load(UNLIMITED_POLICY)),
                              on_action=undisturbed.append, clock="wall")
    for r in records:
        runtime.submit(r.value, "clickstream")
    expected = {a.action_id for a in undisturbed}
    assert len(expected) > 200  # enough decisions for the disruptions to land among them
    return records, rules, expected


def tally(values: list[bytes], expected: set[str], when: str) -> tuple[set[str], int]:
    """The action ids read and how many arrived more than once, printed beside `when`."""
    got = collections.Counter(action_codec.decode(v).action_id for v in values)
    duplicates = sum(n - 1 for n in got.values())
    print(f"{when}: {len(expected)} actions expected, {len(set(got) - expected)} unexpected, "
          f"{len(expected - set(got))} missing, {duplicates} duplicates")
    return set(got), duplicates


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_kill_minus_nine_at_random_moments_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path, guarantee: str
) -> None:
    records, rules, expected = backlog(tmp_path, seed=5)

    w = Worker(kafka_bootstrap, tmp_path, KAIROS_PROCESSING_GUARANTEE=guarantee,
               KAIROS_RULES_DIR=str(rules), **FAST)
    base = int(time.time() * 1000) - 600_000
    produce(w.bootstrap, [(w.topics["clickstream"], r.key, r.value) for r in records],
            [base + i for i in range(len(records))])
    rng = random.Random(guarantee)
    w.start()
    kills = []
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.1, 0.6))  # somewhere inside the backlog
            w.kill9()
            kills.append(len(consume(w.bootstrap, w.topics["actions"], lambda v: False, 1.0)))
            w.start()
        values = consume(
            w.bootstrap, w.topics["actions"],
            lambda vs: expected <= {action_codec.decode(v).action_id for v in vs}, 120)
    finally:
        w.stop()
    got, duplicates = tally(values, expected, f"{guarantee}, killed at {kills} actions seen")
    assert kills[0] < len(expected), "the first kill came after the backlog was drained"
    assert got == expected
    if guarantee == "exactly_once":
        assert duplicates == 0


def test_workers_joining_leaving_and_killed_mid_backlog_give_each_action_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """While one worker drains a backlog under `exactly_once`, a second joins, the first is
    kill -9'd and comes back, the second leaves: every move of a partition is a rebalance with
    transactions open on both sides, and each action still appears once."""
    records, rules, expected = backlog(tmp_path, seed=11)

    env = {"KAIROS_PROCESSING_GUARANTEE": "exactly_once", "KAIROS_RULES_DIR": str(rules), **FAST}
    a = Worker(kafka_bootstrap, tmp_path / "a", **env)
    b = Worker(kafka_bootstrap, tmp_path / "b", prefix=a.prefix, **env)
    base = int(time.time() * 1000) - 600_000
    produce(a.bootstrap, [(a.topics["clickstream"], r.key, r.value) for r in records],
            [base + i for i in range(len(records))])
    rng = random.Random("join-leave")

    def seen() -> int:
        return len(consume(a.bootstrap, a.topics["actions"], lambda v: False, 1.0))

    moments: list[tuple[str, int]] = []  # each move, with the actions visible after it
    a.start()
    try:
        steps = [("b joins", b.start), ("a killed", a.kill9), ("a back", a.start),
                 ("b leaves", b.stop)]
        for name, step in steps:
            time.sleep(rng.uniform(0.1, 0.5))  # somewhere inside the backlog
            step()
            moments.append((name, seen()))
        consume(a.bootstrap, a.topics["actions"],
                lambda vs: expected <= {action_codec.decode(v).action_id for v in vs}, 120)
        time.sleep(2)  # a duplicate committed late would land by now
        values = consume(a.bootstrap, a.topics["actions"], lambda v: False, 5.0)
    finally:
        a.stop()
        b.stop()
    got, duplicates = tally(values, expected, f"moves at {moments} actions seen")
    assert moments[0][1] < len(expected), "the second worker joined after the backlog drained"
    assert got == expected
    assert duplicates == 0
