"""Backtests you can inspect: the state a replay keeps for explain, actions joined with their
input by the trigger's identifiers, and the chart's series."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from engine.cli import main
from engine.model import actions as action_codec
from engine.model.events import decode, detect_source
from engine.ops.chart import DAY, HOUR, series
from engine.ops.realistic import RealisticGenerator
from engine.ops.replay import ReplayReport


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """People over a week: logins, merges, quiet hours, timers."""
    path = tmp_path_factory.mktemp("backtest") / "history.jsonl"
    path.write_bytes(b"".join(g.value + b"\n" for g in RealisticGenerator(40, seed=3, days=7)))
    return path


@pytest.mark.parametrize("jobs", [1, 2])
def test_explain_reads_the_state_a_replay_kept(history: Path, tmp_path: Path, jobs: int,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out, state, plain = tmp_path / "actions.jsonl", tmp_path / "state", tmp_path / "plain.jsonl"
    # A process of its own: a fork after this one has opened RocksDB could inherit its locks.
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "replay", "--events", str(history), "--out",
         str(out), "--jobs", str(jobs), "--data-dir", str(state)],
        capture_output=True, text=True, timeout=120, check=True)
    assert f"kairos explain CONTACT --data-dir {state}" in done.stdout
    if jobs > 1:
        assert sorted(p.name for p in state.iterdir()) == ["job-0", "job-1"]
    assert main(["replay", "--events", str(history), "--out", str(plain), "--jobs", "1"]) == 0
    assert out.read_bytes() == plain.read_bytes()  # keeping the state changes no decision
    actions = [action_codec.decode(line) for line in out.read_bytes().splitlines()]
    for a in (actions[0], actions[-1]):
        capsys.readouterr()
        assert main(["explain", a.contact_id, "--data-dir", str(state)]) == 0
        assert f"action {a.action_id}" in capsys.readouterr().out
    user = next(a.trigger_user_id for a in actions if isinstance(a.trigger_user_id, str))
    assert main(["explain", f"user:{user}", "--data-dir", str(state)]) == 0
    assert f"user:{user}" in capsys.readouterr().out.split("\n")[1]  # among its identifiers


def test_a_replay_refuses_a_data_dir_with_something_in_it(
        history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old").write_text("x")
    assert main(["replay", "--events", str(history), "--data-dir", str(tmp_path)]) == 2
    assert "is not empty: a replay starts from empty state" in capsys.readouterr().err


def test_actions_carry_the_identifiers_of_their_trigger(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "actions.jsonl"
    assert main(["replay", "--events", str(history), "--out", str(out), "--jobs", "1"]) == 0
    events = {}
    for raw in history.read_bytes().splitlines():
        ev = decode(detect_source(raw), raw)
        events[ev.event_id] = ev
    actions = [action_codec.decode(line) for line in out.read_bytes().splitlines()]
    joined = [a for a in actions if a.trigger_event_id in events]
    assert joined
    for a in joined:
        ev = events[a.trigger_event_id]
        got = (a.trigger_user_id, a.trigger_anonymous_id, a.trigger_email)
        want = (ev.user_id, ev.anonymous_id, ev.email)
        assert tuple(None if v is msgspec.UNSET else v for v in got) == want
    deferred = [a for a in joined if a.decided_at[:13] != a.event_time[:13]]
    assert deferred, "quiet hours deferred some actions"
    assert all(a.trigger_user_id or a.trigger_anonymous_id for a in deferred)


def _report(*actions: tuple[float, str, str]) -> ReplayReport:
    report = ReplayReport()
    for t, rule, channel in actions:
        report.count_action(rule, channel, "c1", t)
    return report


def test_the_series_has_every_period_with_empty_ones_as_zero() -> None:
    t0 = 1_700_000_000.0 - 1_700_000_000.0 % HOUR
    report = _report((t0 + 10, "r1", "email"), (t0 + 20, "r1", "email"),
                     (t0 + 3 * HOUR + 5, "r2", "sms"))
    s = series(report)
    assert s.period == HOUR
    assert s.starts == [t0 + i * HOUR for i in range(4)]
    assert s.counts == {"email": [2, 0, 0, 0], "sms": [0, 0, 0, 1]}
    assert series(report, rule="r2").counts == {"sms": [1]}
    long = _report((t0, "r1", "email"), (t0 + 10 * DAY, "r1", "email"))
    assert series(long).period == DAY and series(long).counts["email"][1:-1] == [0] * 9


def test_held_back_counts_reasons_for_every_rule_or_one() -> None:
    report = ReplayReport()
    report.held.update({("r1", "email", "capped"): 3, ("r2", "sms", "capped"): 1,
                        ("r2", "", "cooling_down"): 2})
    assert report.held_by_reason() == {"capped": 4, "cooling_down": 2}
    assert report.held_by_reason("r2") == {"capped": 1, "cooling_down": 2}
    assert "held back per reason:\n  capped" in report.render()


def test_the_chart_of_one_rule_is_drawn(history: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "chart.png"
    assert main(["replay", "--events", str(history), "--jobs", "1", "--chart", str(png),
                 "--chart-rule", "cart-abandoned"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"chart: {png}" in capsys.readouterr().out
