"""`kairos replay` and `kairos run` over recorded history: reports, determinism, dead letters."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from engine.cli import main
from engine.model import actions as action_codec
from engine.ops.generator import JourneyGenerator
from engine.ops.replay import replay
from engine.sdk.ruleset import RuleSet


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "history.jsonl.gz"
    with gzip.open(path, "wb") as f:
        for g in JourneyGenerator(400, seed=2, bad_ratio=0.01):
            f.write(g.value + b"\n")
    return path


def test_two_replays_write_byte_identical_actions(history: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["replay", "--events", str(history), "--out", str(a)]) == 0
    assert main(["replay", "--events", str(history), "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_bytes().splitlines()) > 100


def test_the_report_counts_what_the_action_file_holds(history: Path, tmp_path: Path) -> None:
    out, dead = tmp_path / "a.jsonl", tmp_path / "dead.jsonl"
    with out.open("wb") as o, dead.open("wb") as d:
        report = replay(history, RuleSet.load(), o, d)
    actions = [action_codec.decode(line) for line in out.read_bytes().splitlines()]
    with gzip.open(history) as f:
        assert report.events == sum(1 for _ in f)
    assert sum(report.fires.values()) == len(actions)
    assert report.contacts == {a.contact_id for a in actions}
    assert sum(report.channels.values()) == len(actions)
    assert sum(report.dead_letters.values()) == len(dead.read_bytes().splitlines()) > 0
    letter = orjson.loads(dead.read_bytes().splitlines()[0])
    assert letter["topic"] == str(history) and letter["offset"] >= 1  # file and line number
    assert "cart-abandoned" in report.fires  # timers fired as event time passed them
    assert all(a.decided_at >= a.event_time for a in actions)
    assert "events read:" in report.render()


def test_replay_draws_a_chart(history: Path, tmp_path: Path) -> None:
    chart = tmp_path / "actions.png"
    assert main(["replay", "--events", str(history), "--chart", str(chart)]) == 0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_keeps_state_on_disk_between_runs(tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    order = {"messageId": "m1", "type": "track", "event": "Order Completed", "userId": "u1",
             "timestamp": "2026-11-02T10:00:00Z",
             "properties": {"products": [{"category": "books"}]}}
    who = {"messageId": "m0", "type": "identify", "userId": "u1",
           "timestamp": "2026-11-02T09:00:00Z", "traits": {"email": "u1@example.com"}}
    events.write_bytes(orjson.dumps(who) + b"\n" + orjson.dumps(order) + b"\n")
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    data = tmp_path / "state"
    assert main(["run", "--events", str(events), "--out", str(first), "--data-dir", str(data)]) == 0
    [action] = [action_codec.decode(x) for x in first.read_bytes().splitlines()]
    assert action.action == "welcome-books"
    order["messageId"] = "m2"
    events.write_bytes(orjson.dumps(order) + b"\n")
    assert main(["run", "--events", str(events), "--out", str(second), "--data-dir", str(data)]) == 0
    welcomes = [action_codec.decode(x) for x in second.read_bytes().splitlines()]
    assert [a for a in welcomes if a.rule_id == "first-purchase-in-category"] == []
