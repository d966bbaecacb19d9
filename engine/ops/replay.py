"""`kairos replay`: what would these rules have done over this history?

Runs the embedded runtime in event time over recorded events (the three input shapes, mixed,
optionally gzipped), from empty in-memory state, so two runs over the same input write
byte-identical action files; what rules in shadow mode would have done is counted apart (and
written to `shadow_out`), never among the actions. Timers fire as event time passes their due
time; timers still pending after the last event stay pending, as they would be in production
at that moment.
With `jobs` > 1 the history is split by contact over that many processes
(`engine/ops/partition.py`), and the files are the same bytes as with one.
With `data_dir` the state is kept in RocksDB as the embedded runtime keeps it, so
`kairos explain --data-dir` reads it afterwards: in that directory itself with one job, in a
directory per job with more (each contact is in exactly one; explain looks in each).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from engine.core.policy import DEFAULT_POLICY, Policy
from engine.model import actions as action_codec
from engine.model import deadletter
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.model.events import epoch
from engine.ops.history import read_lines
from engine.ops.partition import replay_partitioned
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet


@dataclass
class ReplayReport:
    events: int = 0
    seconds: float = 0.0
    fires: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    contacts: set[str] = field(default_factory=set)
    dead_letters: Counter[str] = field(default_factory=Counter)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)  # decided, rule, channel
    shadow: Counter[str] = field(default_factory=Counter)  # would-be actions per shadow rule
    # (rule, channel, reason) of candidates the policy did not deliver when deciding them
    held: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def count_action(self, rule_id: str, channel: str, contact_id: str, decided: float) -> None:
        self.fires[rule_id] += 1
        self.channels[channel] += 1
        self.contacts.add(contact_id)
        self.timeline.append((decided, rule_id, channel))

    def held_by_reason(self, rule: str | None = None) -> Counter[str]:
        """Candidates (of every rule, or of `rule`) not delivered when decided, per reason."""
        held: Counter[str] = Counter()
        for (r, _, reason), n in self.held.items():
            if rule is None or r == rule:
                held[reason] += n
        return held

    def render(self) -> str:
        lines = [
            f"events read:      {self.events:,}",
            f"replay speed:     {self.events_per_second:,.0f} events/s ({self.seconds:.2f} s)",
            f"actions:          {sum(self.fires.values()):,}",
            f"contacts reached: {len(self.contacts):,}",
            f"dead letters:     {sum(self.dead_letters.values()):,}"
            + (f" {dict(self.dead_letters)}" if self.dead_letters else ""),
            "fires per rule:",
            *(f"  {rule:<36} {n:>8,}" for rule, n in sorted(self.fires.items())),
            "actions per channel:",
            *(f"  {ch:<36} {n:>8,}" for ch, n in sorted(self.channels.items())),
        ]
        if held := self.held_by_reason():
            lines += ["held back per reason:",
                      *(f"  {why:<36} {n:>8,}" for why, n in sorted(held.items()))]
        if self.shadow:
            lines += ["shadow actions per rule (never delivered):",
                      *(f"  {rule:<36} {n:>8,}" for rule, n in sorted(self.shadow.items()))]
        return "\n".join(lines)


def replay(
    events: str | Path,
    rules: RuleSet,
    out: IO[bytes] | None = None,
    dead_letters: IO[bytes] | None = None,
    policy: Policy = DEFAULT_POLICY,
    before_close: Callable[[EmbeddedRuntime], None] | None = None,
    also: Callable[[Action], None] | None = None,
    jobs: int = 1,
    shadow_out: IO[bytes] | None = None,
    data_dir: Path | None = None,
) -> ReplayReport:
    """Replay `events`; `also` sees each action in file order. `before_close` gets the final
    runtime, which only a one-process replay has (`jobs` 1, the default). `data_dir` must be
    new or empty: a replay starts from empty state."""
    if (problem := data_dir_problem(data_dir)) is not None:
        raise ValueError(problem)
    if jobs > 1:
        if before_close is not None:
            raise ValueError("before_close needs the replay's runtime: it runs with jobs=1 only")
        return _replay_parallel(events, rules, out, dead_letters, policy, also, jobs, shadow_out,
                                data_dir)
    report = ReplayReport()

    def on_action(a: Action) -> None:
        report.count_action(a.rule_id, a.channel, a.contact_id, epoch(a.decided_at))
        if out is not None:
            out.write(action_codec.encode(a) + b"\n")
        if also is not None:
            also(a)

    def on_dead_letter(d: DeadLetter) -> None:
        report.dead_letters[d.category()] += 1
        if dead_letters is not None:
            dead_letters.write(deadletter.encode(d) + b"\n")

    def on_shadow(a: Action) -> None:
        report.shadow[a.rule_id] += 1
        if shadow_out is not None:
            shadow_out.write(action_codec.encode(a) + b"\n")

    runtime = EmbeddedRuntime(
        Pipeline(rules, policy), on_action=on_action, on_dead_letter=on_dead_letter,
        on_shadow=on_shadow, clock="event", data_dir=data_dir,
    )
    started = time.perf_counter()
    topic = str(events)
    for line_no, raw in read_lines(events):
        report.events += 1
        runtime.submit(raw, topic=topic, offset=line_no)
    report.seconds = time.perf_counter() - started
    report.held = runtime.pipeline.metrics.suppressions
    if before_close is not None:  # a caller that wants the final state (e.g. uplift)
        before_close(runtime)
    runtime.close()
    return report


def data_dir_problem(data_dir: Path | None) -> str | None:
    """Why `data_dir` cannot keep a replay's state (it holds something already), or None."""
    if data_dir is not None and data_dir.exists() and any(data_dir.iterdir()):
        return (f"--data-dir {data_dir} is not empty: a replay starts from empty state, "
                "give a new directory")
    return None


def _replay_parallel(
    events: str | Path, rules: RuleSet, out: IO[bytes] | None, dead_letters: IO[bytes] | None,
    policy: Policy, also: Callable[[Action], None] | None, jobs: int,
    shadow_out: IO[bytes] | None, data_dir: Path | None,
) -> ReplayReport:
    """The same report and files from `jobs` processes; its time is the whole run's."""
    report = ReplayReport()
    started = time.perf_counter()
    done = replay_partitioned(events, rules, policy, jobs, data_dir)
    report.events, report.held = done.events, done.held
    for _, line, rule_id, channel, contact_id, decided, shadow in done.actions:
        if shadow:
            report.shadow[rule_id] += 1
            if shadow_out is not None:
                shadow_out.write(line + b"\n")
            continue
        report.count_action(rule_id, channel, contact_id, decided)
        if out is not None:
            out.write(line + b"\n")
        if also is not None:
            also(action_codec.decode(line))
    for _, line, category in done.letters:
        report.dead_letters[category] += 1
        if dead_letters is not None:
            dead_letters.write(line + b"\n")
    report.seconds = time.perf_counter() - started
    return report

