"""`kairos run`: the embedded runtime over recorded or piped events, actions as JSON lines."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Literal

from engine.core.policy import DEFAULT_POLICY, Policy
from engine.model import actions as action_codec
from engine.model import deadletter
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.ops.history import read_lines
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.runtime.rule_updates import DirectoryWatcher
from engine.sdk.ruleset import RuleSet


def run_file(
    events: str,
    *,
    out: str,
    dead_letters: str | None,
    data_dir: Path,
    rules_dir: Path,
    clock: Literal["event", "wall"],
    metrics_port: int = 0,
    policy: Policy = DEFAULT_POLICY,
) -> int:
    sink = sys.stdout.buffer if out == "-" else open(out, "wb")  # noqa: SIM115
    data_dir.mkdir(parents=True, exist_ok=True)
    dl_path = Path(dead_letters) if dead_letters else data_dir / "dead-letters.jsonl"
    with dl_path.open("ab") as dl:

        def write_action(action: Action) -> None:
            sink.write(action_codec.encode(action) + b"\n")

        def write_dead_letter(letter: DeadLetter) -> None:
            dl.write(deadletter.encode(letter) + b"\n")

        pipeline = Pipeline(RuleSet.load(rules_dir), policy)
        if metrics_port:
            pipeline.metrics.serve(metrics_port)
        runtime = EmbeddedRuntime(
            pipeline,
            data_dir=data_dir,
            on_action=write_action,
            on_dead_letter=write_dead_letter,
            clock=clock,
        )
        watcher = DirectoryWatcher(rules_dir, pipeline.use_rules)
        polled = time.monotonic()
        try:
            for line_no, raw in read_lines(events):
                runtime.submit(raw, offset=line_no, topic=events)
                if time.monotonic() - polled > 1.0:  # live input: rule edits apply in a second
                    watcher.poll()
                    polled = time.monotonic()
            sink.flush()
        finally:
            runtime.close()
            if sink is not sys.stdout.buffer:
                sink.close()
    return 0
