"""docs/rules.md's tutorial, executed: its files written, its commands run, their output checked.

A fenced block whose info string is `LANG file=PATH` is written to PATH; one whose info string
is `sh run` holds commands (`$ ...`) each followed by lines it must print, in that order (a line
ending in `...` only has to start that way). Commands run in a fresh directory holding the
repository's docs/examples, with `kairos` and `pytest` as this interpreter's modules.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "rules.md"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PROGRAMS = {"kairos": ["-m", "engine.cli"], "pytest": ["-m", "pytest", "-p", "no:cacheprovider"]}


@dataclass
class Command:
    argv: list[str]
    prints: list[str]


def blocks() -> tuple[dict[str, str], list[Command]]:
    """The tutorial's files (path -> text) and commands, in the order it gives them."""
    files: dict[str, str] = {}
    commands: list[Command] = []
    for info, body in FENCE.findall(TUTORIAL.read_text()):
        words = info.split()
        path = next((w.removeprefix("file=") for w in words if w.startswith("file=")), None)
        if path is not None:
            files[path] = body
        elif words[1:] == ["run"]:
            for line in body.splitlines():
                if line.startswith("$ "):
                    commands.append(Command(shlex.split(line[2:]), []))
                elif line.strip():
                    commands[-1].prints.append(line.rstrip())
    return files, commands


def printed_in_order(expected: list[str], output: str) -> list[str]:
    """The expected lines not found in `output` in that order (empty when all are)."""
    lines = iter(line.rstrip() for line in output.splitlines())
    for i, want in enumerate(expected):
        prefix = want.removesuffix("...")
        exact = prefix == want
        if not any(line == want if exact else line.startswith(prefix) for line in lines):
            return expected[i:]
    return []


def test_the_tutorial_gives_files_and_commands_for_each_step() -> None:
    files, commands = blocks()
    assert {"shop/rules/price_drop.py", "shop/rules/vip.toml",
            "shop/tests/test_shop_rules.py"} <= set(files)
    ran = [(c.argv[0], c.argv[1]) for c in commands]
    for step in [("pytest", "shop/tests"), ("kairos", "rules"), ("kairos", "replay"),
                 ("kairos", "explain")]:
        assert step in ran
    assert all(c.argv[0] in PROGRAMS and c.prints for c in commands)


def test_following_the_tutorial_literally_works(tmp_path: Path) -> None:
    files, commands = blocks()
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIROS_")}
    env["PYTHONPATH"] = str(ROOT)
    for c in commands:
        done = subprocess.run([sys.executable, *PROGRAMS[c.argv[0]], *c.argv[1:]],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=180, check=False)
        shown = shlex.join(c.argv)
        assert done.returncode == 0, f"{shown} failed:\n{done.stdout}\n{done.stderr}"
        missing = printed_in_order(c.prints, done.stdout)
        assert not missing, f"{shown} did not print {missing[0]!r}:\n{done.stdout}"
    assert (tmp_path / "shop-actions.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("expected", "output", "left"), [
    (["a", "c..."], "a\nb\nc 1.2s\n", []),
    (["c", "a"], "a\nb\nc\n", ["a"]),  # out of order
    (["b"], "bb\n", ["b"]),  # a line is matched whole unless it ends in ...
])
def test_printed_lines_are_matched_in_order(expected: list[str], output: str,
                                            left: list[str]) -> None:
    assert printed_in_order(expected, output) == left
