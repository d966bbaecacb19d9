"""An edited rule applies by time: `kairos run` looks at its rules directory every second, so
the next event meets the new rule even when nothing arrived since the edit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
RULE = '''
from engine.sdk import Context, Proposal, on, rule


@rule("ping", triggers=[on("track", "Ping")])
def ping(ctx: Context) -> Proposal:
    return Proposal(action="ACTION", channels=("crm",), payload={"script": "x"})
'''


def ping(n: int) -> bytes:
    return orjson.dumps({"type": "track", "event": "Ping", "userId": f"u{n}",
                         "messageId": f"m{n}", "timestamp": "2026-09-21T13:00:00Z"}) + b"\n"


@pytest.mark.parametrize("clock", ["wall", "event"])
def test_an_edited_rule_decides_the_next_event_after_a_quiet_spell(
        tmp_path: Path, clock: str) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ping.py").write_text(RULE.replace("ACTION", "before"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "--events", "-", "--clock", clock,
         "--rules", str(rules), "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT), "KAIROS_POLICY": str(
            ROOT / "engine/testing/unlimited.toml")})
    assert proc.stdin is not None and proc.stdout is not None
    watchdog = threading.Timer(30, proc.kill)  # a run that stops answering fails, never hangs
    watchdog.start()
    try:
        proc.stdin.write(ping(1))
        proc.stdin.flush()
        assert orjson.loads(proc.stdout.readline())["action"] == "before"
        (rules / "ping.py").write_text(RULE.replace("ACTION", "after-the-edit"))
        time.sleep(2.0)  # no event meanwhile: only the clock can have reloaded the rules
        proc.stdin.write(ping(2))
        proc.stdin.close()
        assert orjson.loads(proc.stdout.readline())["action"] == "after-the-edit"
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
