"""Every `kairos` command fails with one line, what went wrong and what to do, exit code 1;
`--debug` shows the traceback. Run as a person runs it: a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def kairos(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("kairos ")]
    assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_explain_on_a_missing_data_dir(tmp_path: Path) -> None:
    line = one_line(kairos("explain", "u1", "--data-dir", str(tmp_path / "none")))
    assert line == (f"kairos explain: {tmp_path / 'none'}: no engine state here; give "
                    "--data-dir the directory of a `kairos run` or `kairos replay --data-dir` "
                    "(or --kafka for a worker group)")


def test_replay_on_a_missing_file(tmp_path: Path) -> None:
    line = one_line(kairos("replay", "--events", str(tmp_path / "none.jsonl")))
    assert line == f"kairos replay: {tmp_path / 'none.jsonl'}: no such file or directory; " \
                   "check the path"


def test_rules_deploy_without_a_broker() -> None:
    done = kairos("rules", "deploy", KAIROS_BROKER="127.0.0.1:9", KAIROS_BROKER_TIMEOUT="1")
    line = one_line(done)
    assert done.stderr.splitlines() == [line]
    assert line.startswith("kairos rules deploy: no Kafka broker answered (KafkaConnectionError:")
    assert line.endswith("; start one, or point KAIROS_BROKER at it")


def test_a_syntax_error_in_a_rule_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "vip.py").write_text("from engine.sdk import rule\n\ndef vip(:\n")
    line = one_line(kairos("replay", "--events", str(tmp_path / "x.jsonl"),
                           "--rules", str(tmp_path)))
    assert line == ("kairos replay: vip.py:3: syntax error: invalid syntax; fix the rule, then "
                    "run `kairos rules check`")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = kairos("--debug", "replay", "--events", str(tmp_path / "none.jsonl"))
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "FileNotFoundError" in done.stderr


def test_a_usage_error_exits_2() -> None:
    done = kairos("replay")
    assert done.returncode == 2 and "the following arguments are required: --events" in done.stderr
