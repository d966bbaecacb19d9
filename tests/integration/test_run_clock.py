"""`kairos run --clock wall` as a process: timers fire as the machine's clock passes them."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from engine.model import actions as action_codec
from engine.testing import UNLIMITED_POLICY
from tests.helpers import ROOT
from tests.integration.timer_rule import page_view, timer_rules


def kairos_run(tmp_path: Path, events: str, **kw: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KAIROS_POLICY": str(UNLIMITED_POLICY), "KAIROS_TIMER_INTERVAL": "0.1",
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "--clock", "wall", "--events", events,
         "--rules", str(tmp_path / "rules"), "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,  # type: ignore[call-overload]
    )


def test_a_timer_fires_while_stdin_is_idle(tmp_path: Path) -> None:
    timer_rules(tmp_path / "rules", after=1.0)
    proc = kairos_run(tmp_path, "-", stdin=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout],  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    try:
        started = time.time()
        proc.stdin.write(page_view("wait-1", started) + b"\n")
        proc.stdin.flush()
        line = lines.get(timeout=20)  # stdin stays open: no new line, the clock still moves
        action = action_codec.decode(line)
        assert (action.rule_id, action.action, action.payload) == ("ping-later", "ping",
                                                                   {"page": "/wait"})
        assert time.time() - started >= 1.0  # not before it was due
        assert proc.poll() is None  # still reading stdin
    finally:
        proc.stdin.close()
    assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""
    reader.join(5)
    assert lines.empty()  # fired once


def test_timers_due_at_the_end_of_a_file_fire_and_later_ones_on_the_next_run(
    tmp_path: Path,
) -> None:
    timer_rules(tmp_path / "rules", after=1.5)
    events = tmp_path / "events.jsonl"
    events.write_bytes(page_view("file-1", time.time()) + b"\n")
    first = kairos_run(tmp_path, str(events))
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err.decode()
    assert out == b""  # not due yet at the end of the file: kept in the data directory
    time.sleep(1.6)
    (tmp_path / "empty.jsonl").write_bytes(b"")
    second = kairos_run(tmp_path, str(tmp_path / "empty.jsonl"))
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err.decode()
    fired = [action_codec.decode(line) for line in out.splitlines()]
    assert [(a.rule_id, a.action) for a in fired] == [("ping-later", "ping")]
