"""`kairos run`: the embedded runtime over recorded or piped events, actions as JSON lines.

With `--clock wall` time is the machine's: timers fire as it passes them, while lines are read
and while the input is idle (a quiet stdin is looked at every `timer_interval` seconds). Due
timers fire once at start (those that came due while nothing ran) and once at the end of the
input, then `run` exits; timers not yet due stay in the data directory for the next run.

With either clock the rules directory is looked at every second, between lines and while the
input is idle: an edited rule decides the next event even after a quiet spell.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, cast

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

Line = tuple[int, bytes]
_END = object()


def paced(events: str, interval: float) -> Iterator[Line | None]:
    """The input's lines, and None whenever `interval` seconds pass without one.

    A thread reads (a pipe blocks), so the caller keeps the clock moving meanwhile; the bounded
    queue holds the reader back when deciding is slower than reading.
    """
    lines: queue.Queue[object] = queue.Queue(maxsize=10_000)

    def read() -> None:
        try:
            for item in read_lines(events):
                lines.put(item)
        except BaseException as exc:  # handed to the caller, raised there
            lines.put(exc)
        lines.put(_END)

    threading.Thread(target=read, name="kairos-run-input", daemon=True).start()
    while True:
        try:
            item = lines.get(timeout=interval)
        except queue.Empty:
            yield None
            continue
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        yield cast(Line, item)


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
    timer_interval: float = 0.25,
) -> int:
    sink = sys.stdout.buffer if out == "-" else open(out, "wb")  # noqa: SIM115
    data_dir.mkdir(parents=True, exist_ok=True)
    dl_path = Path(dead_letters) if dead_letters else data_dir / "dead-letters.jsonl"
    wall = clock == "wall"
    with dl_path.open("ab") as dl:

        def write_action(action: Action) -> None:
            sink.write(action_codec.encode(action) + b"\n")
            if wall:  # live: each action as it is decided
                sink.flush()

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
        try:
            if wall:
                runtime.tick()  # timers that came due while nothing was running
            for line in paced(events, timer_interval):
                watcher.poll_if_due()  # before the line: it meets the rules as they are now
                if line is not None:
                    runtime.submit(line[1], offset=line[0], topic=events)
                if wall:
                    runtime.tick()
            if wall:
                runtime.tick()
            sink.flush()
        finally:
            runtime.close()
            if sink is not sys.stdout.buffer:
                sink.close()
    return 0
