"""`kairos replay --jobs N`: the history split by contact gives the one-process files, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.model import actions as action_codec
from engine.model import state as state_codec
from engine.ops.generator import JourneyGenerator
from engine.ops.realistic import RealisticGenerator
from engine.ops.replay import ReplayReport, replay
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet

RULES = RuleSet.load()


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _replay(events: Path, jobs: int, tmp: Path) -> tuple[bytes, bytes, ReplayReport]:
    out, dead = tmp / f"actions-{jobs}.jsonl", tmp / f"dead-{jobs}.jsonl"
    with out.open("wb") as o, dead.open("wb") as d:
        report = replay(events, RULES, o, d, jobs=jobs)
    return out.read_bytes(), dead.read_bytes(), report


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """People over a week: shared devices and logins (merges), timers, email, bad lines."""
    lines = [g.value for g in RealisticGenerator(60, seed=5, bad_ratio=0.02, days=7)]
    lines[len(lines) // 2:len(lines) // 2] = [b"", b"   ", b"not json"]  # blank lines count too
    return _write(tmp_path_factory.mktemp("parallel") / "history.jsonl", lines)


@pytest.fixture(scope="module")
def sequential(history: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[
        bytes, bytes, ReplayReport]:
    return _replay(history, 1, tmp_path_factory.mktemp("one"))


def test_the_history_exercises_merges_timers_and_dead_letters(history: Path) -> None:
    merged: list[str] = []

    def collect(runtime: EmbeddedRuntime) -> None:
        runtime.flush()
        merged.extend(k for k, raw in runtime.contacts.items()
                      if state_codec.decode(raw).merged_into is not None)

    actions: list[action_codec.Action] = []
    report = replay(history, RULES, before_close=collect, also=actions.append)
    assert merged  # logins on shared devices merged contacts
    assert sum(a.trigger_event_id.startswith("timer:") for a in actions) > 20
    assert len({a.contact_id for a in actions}) > 20
    assert sum(report.dead_letters.values()) > 3


@pytest.mark.parametrize("jobs", [2, 3, 4])
def test_any_number_of_jobs_writes_the_one_process_files(
    history: Path, sequential: tuple[bytes, bytes, ReplayReport], jobs: int, tmp_path: Path
) -> None:
    actions, dead, report = _replay(history, jobs, tmp_path)
    one_actions, one_dead, one = sequential
    assert len(one_actions.splitlines()) > 100 and len(one_dead.splitlines()) > 3
    assert actions == one_actions
    assert dead == one_dead
    assert (report.events, report.fires, report.channels, report.contacts, report.dead_letters,
            report.timeline) == (one.events, one.fires, one.channels, one.contacts,
                                 one.dead_letters, one.timeline)


def test_also_sees_each_action_in_file_order(history: Path, tmp_path: Path) -> None:
    seen: list[action_codec.Action] = []
    out = tmp_path / "actions.jsonl"
    with out.open("wb") as o:
        replay(history, RULES, o, also=seen.append, jobs=2)
    assert seen == [action_codec.decode(line) for line in out.read_bytes().splitlines()]
    assert seen


def test_the_final_runtime_is_only_there_in_one_process(history: Path) -> None:
    with pytest.raises(ValueError, match="before_close needs the replay's runtime"):
        replay(history, RULES, before_close=lambda runtime: None, jobs=2)


def test_the_cli_takes_jobs_and_refuses_none(
    history: Path, sequential: tuple[bytes, bytes, ReplayReport], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "a.jsonl"
    assert main(["replay", "--events", str(history), "--out", str(out), "--jobs", "2"]) == 0
    assert out.read_bytes() == sequential[0]
    assert "replay speed:" in capsys.readouterr().out
    assert main(["replay", "--events", str(history), "--jobs", "0"]) == 2
    assert "--jobs 0: give at least 1" in capsys.readouterr().err


POOL = [g.value for g in JourneyGenerator(12, seed=11, bad_ratio=0.05)]


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # files rewritten each time
@given(picks=st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=120))
def test_random_histories_out_of_order_give_the_same_bytes_with_three_jobs(
    picks: list[int], tmp_path: Path
) -> None:
    """Lines picked at random from a few journeys: repeats, events far out of time order."""
    events = _write(tmp_path / "random.jsonl", [POOL[i] for i in picks])
    one = _replay(events, 1, tmp_path)
    three = _replay(events, 3, tmp_path)
    assert three[:2] == one[:2]
    assert three[2].events == one[2].events == len(picks)


def test_outcome_lines_replay_alike_in_one_process_and_in_jobs(
    history: Path, sequential: tuple[bytes, bytes, ReplayReport], tmp_path: Path
) -> None:
    """A connector's outcome names its contact: it skips identity in one process and in jobs."""
    import orjson

    sent = [action_codec.decode(line) for line in sequential[0].splitlines()[:30]]
    outcomes = [orjson.dumps({
        "outcome_id": f"o-{a.action_id}", "action_id": a.action_id, "contact_id": a.contact_id,
        "channel": a.channel, "action": a.action, "outcome": "ignored",
        "timestamp": a.decided_at}) for a in sent]
    lines = history.read_bytes().splitlines()
    with_outcomes = _write(tmp_path / "with-outcomes.jsonl", lines + outcomes)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    one_actions, one_dead, one = _replay(with_outcomes, 1, tmp_path / "a")
    two_actions, two_dead, _ = _replay(with_outcomes, 2, tmp_path / "b")
    assert one.events == sequential[2].events + len(outcomes)
    assert sum(one.dead_letters.values()) == sum(sequential[2].dead_letters.values())
    assert (two_actions, two_dead) == (one_actions, one_dead)
