"""Parallel replay: the history split by contact, each part replayed in a process of its own,
the outputs merged back into exactly the order one process writes them.

Two events can touch the same state only if their identifiers are connected: an event reads and
writes the identity records of its own identifiers, the contacts those records name, and what
those contacts merged into (merges happen only among linked identifiers); an outcome names its
contact id, which is derived from the first identifier of the event that created the contact.
So a union-find over identifiers and contact ids gives groups of contacts that never interact,
and each group can be replayed alone, in input order, from empty state. A catalogue record
reaches every contact interested in its item: when a history holds one, the contacts whose
events name an item are grouped with that item (`item:<id>`).

What they do share is event time: the one-process watermark is the highest event time so far,
every decision's clock, and the moment timers fire. Every part therefore walks the whole
history's watermark (the lines where it rises) and fires its own timers at the very line the
one-process replay fires them. Each output is tagged with where it came out there, so sorting
the parts' outputs by tag gives the sequential files byte for byte:

- (line, 0, round, due, contact, timer id, n): timers fired because the line moved the watermark,
  in the timer index's order (a round is a contact's n-th timer at that line: a fired timer can
  only make its own contact's next timer due, so rounds are per contact);
- (line, 1, n): the line's own event, or its dead letter when it did not decode.

Steps: decode every line once in parallel (chunks; each event travels on as msgpack, which is
cheaper to read than the input shapes), link identifiers (serial, one dict lookup a line),
replay the groups in `jobs` processes (forked, so the history is shared, not copied), merge.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import sys
import traceback
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import count
from multiprocessing.connection import Connection
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from engine.core.identity import contact_id_for
from engine.core.items import interests
from engine.core.policy import Policy
from engine.model import actions as action_codec
from engine.model import deadletter
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.model.events import Event, detect_source, epoch
from engine.model.messages import Catalogued, Deliver, FireTimer, Resolve
from engine.ops.history import open_events
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet

__all__ = ["Partitioned", "available_cores", "job_dir", "job_dirs", "replay_partitioned"]

Tag = tuple[Any, ...]  # (line, phase, …): see the module docstring
# tag, JSON, rule, channel, contact, decided, whether a shadow rule's (never delivered)
ActionOut = tuple[Tag, bytes, str, str, str, float, bool]
LetterOut = tuple[Tag, bytes, str]  # tag, JSON, category
Held = Counter[tuple[str, str, str]]  # (rule, channel, reason) of candidates not delivered
T = TypeVar("T")

_to_msgpack = msgspec.msgpack.Encoder()
_from_msgpack = msgspec.msgpack.Decoder(Event)


def available_cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def job_dir(data_dir: Path, j: int) -> Path:
    """Where job `j` of a partitioned replay keeps its state: its contacts are no other job's."""
    return data_dir / f"job-{j}"


def job_dirs(data_dir: Path) -> list[Path]:
    """The state directories a replay left in `data_dir`: itself, or one per job."""
    return sorted(data_dir.glob("job-*")) or [data_dir]


@dataclass
class Partitioned:
    """A replay's outputs in the one-process order, as encoded lines with what a report counts."""

    events: int
    actions: Iterator[ActionOut]
    letters: Iterator[LetterOut]
    held: Held = field(default_factory=Counter)


class _Links:
    """Union-find over identifiers and contact ids; the smaller name is a group's root, so the
    grouping never depends on the order links were seen."""

    def __init__(self) -> None:
        self.up: dict[str, str] = {}

    def find(self, key: str) -> str:
        up = self.up
        while (parent := up.get(key, key)) != key:
            grand = up.get(parent, parent)
            up[key] = grand
            key = grand
        return key

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.up[max(ra, rb)] = min(ra, rb)


@dataclass
class _Scan:
    """One chunk's lines, decoded: for each event its line, time, group key and payload."""

    lines: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)  # msgpack, or the raw line when raw
    raw: list[bool] = field(default_factory=list)
    letters: list[LetterOut] = field(default_factory=list)  # lines that did not decode
    links: list[tuple[str, str]] = field(default_factory=list)  # (key, its group within chunk)
    # (key, `item:<id>`) of events naming an item: they join its group if a catalogue line does
    interests: list[tuple[str, str]] = field(default_factory=list)
    catalogue: bool = False  # a catalogue line is among these


def _scan(lines: Sequence[bytes], lo: int, hi: int, topic: str, pipeline: Pipeline) -> _Scan:
    """Decode lines[lo:hi] as the embedded runtime's ingest does, and link their identifiers."""
    out, links, linked = _Scan(), _Links(), set[tuple[str, ...]]()
    contact_key = pipeline.policy.identity.contact_id_key
    for i in range(lo, hi):
        raw = lines[i].strip()
        if not raw:
            continue
        first = pipeline.ingest(detect_source(raw), raw, topic, offset=i + 1)
        if isinstance(first, DeadLetter):
            out.letters.append(((i, 1, 0), deadletter.encode(first), first.category()))
            continue
        msg = first.msg
        if isinstance(msg, Catalogued):  # an item's record: replayed with who showed interest
            out.lines.append(i)
            out.times.append(msg.time)
            out.keys.append(f"item:{first.key}")
            out.payloads.append(raw)
            out.raw.append(True)
            out.catalogue = True
            continue
        if isinstance(msg, Resolve):  # the event's identifiers, strongest first
            ids = msg.candidates
            key = ids[0]
            if ids not in linked:  # a contact's events mostly repeat the same few
                linked.add(ids)
                for other in ids[1:]:
                    links.union(key, other)
                # the contact it starts if none is known
                links.union(key, contact_id_for(key, contact_key))
        else:  # an outcome, for the contact its sender names
            assert isinstance(msg, Deliver)
            key = msg.event.contact_id or ""
        event = msg.event
        out.interests += [(key, f"item:{e.key}") for e in interests("", event)]
        try:
            payload, is_raw = _to_msgpack.encode(event), False
        except (OverflowError, msgspec.EncodeError):  # an integer msgpack cannot hold
            payload, is_raw = raw, True
        out.lines.append(i)
        out.times.append(event.time)
        out.keys.append(key)
        out.payloads.append(payload)
        out.raw.append(is_raw)
    out.links = [(k, links.find(k)) for k in links.up]
    return out


@dataclass
class _Plan:
    """What each job replays, and the whole history's watermark: the lines where it rises."""

    own: list[list[tuple[int, float, bytes, bool]]]  # per job: (line, watermark after, payload)
    rises: list[int] = field(default_factory=list)
    highs: list[float] = field(default_factory=list)


def _plan(scans: list[_Scan], jobs: int) -> _Plan:
    links = _Links()
    catalogue = any(s.catalogue for s in scans)
    for s in scans:
        for key, root in s.links:
            links.union(key, root)
        for key, item in s.interests if catalogue else ():
            links.union(key, item)
    roots: dict[str, str] = {}
    groups = [roots.get(k) or roots.setdefault(k, links.find(k)) for s in scans for k in s.keys]
    sizes = Counter(groups)
    loads = [(0, j) for j in range(min(jobs, len(sizes)) or 1)]
    job_of: dict[str, int] = {}
    for root, n in sorted(sizes.items(), key=lambda rn: (-rn[1], rn[0])):  # largest first
        load, j = heapq.heappop(loads)
        job_of[root] = j
        heapq.heappush(loads, (load + n, j))
    plan = _Plan(own=[[] for _ in loads])
    high = 0.0  # the embedded runtime's watermark before any event
    g = 0
    for s in scans:
        for line, t, payload, is_raw in zip(s.lines, s.times, s.payloads, s.raw, strict=True):
            if t > high:
                high = t
                plan.rises.append(line)
                plan.highs.append(t)
            plan.own[job_of[groups[g]]].append((line, high, payload, is_raw))
            g += 1
    return plan


class _Cursor:
    """Where in the one-process replay the output being made would come out (its tag)."""

    def __init__(self) -> None:
        self.tag: Tag = ()
        self.line = -1
        self.fired: dict[str, int] = {}
        self.n = count()

    def at(self, line: int, phase: int) -> None:
        if line != self.line:
            self.line, self.fired = line, {}
        self.tag = (line, phase)

    def timer(self, key: str, msg: FireTimer) -> None:
        rounds = self.fired[key] = self.fired.get(key, 0) + 1
        self.tag = (self.line, 0, rounds, msg.due, key, msg.timer_id)

    def next(self) -> Tag:
        return (*self.tag, next(self.n))


def _job(plan: _Plan, j: int, rules: RuleSet, policy: Policy, topic: str,
         data_dir: Path | None) -> tuple[list[ActionOut], list[LetterOut], Held]:
    """Replay one job's groups in input order, firing their timers where the watermark rises;
    its state in memory, or kept in its own directory under `data_dir`."""
    actions: list[ActionOut] = []
    letters: list[LetterOut] = []
    cursor = _Cursor()

    def output(shadow: bool) -> Callable[[Action], None]:
        def out(a: Action) -> None:
            actions.append((cursor.next(), action_codec.encode(a), a.rule_id, a.channel,
                            a.contact_id, epoch(a.decided_at), shadow))
        return out

    def on_dead_letter(d: DeadLetter) -> None:
        letters.append((cursor.next(), deadletter.encode(d), d.category()))

    runtime = EmbeddedRuntime(Pipeline(rules, policy), on_action=output(False),
                              on_shadow=output(True), on_dead_letter=on_dead_letter,
                              on_timer=cursor.timer,
                              data_dir=None if data_dir is None else job_dir(data_dir, j))
    rises, highs = plan.rises, plan.highs
    nxt = 0  # the first rise after the last line this job has seen

    def fire_until(line: int) -> None:
        """Fire this job's timers at each rise before `line` that passes one."""
        nonlocal nxt
        while (due := runtime.timers.next_due()) is not None:
            q = bisect_left(highs, due, lo=nxt)
            if q == len(rises) or rises[q] >= line:
                return
            cursor.at(rises[q], 0)
            runtime.tick(highs[q])
            nxt = q + 1

    for line, high, payload, is_raw in plan.own[j]:
        fire_until(line)
        cursor.at(line, 0)
        if high > runtime.watermark:
            runtime.tick(high)
        cursor.at(line, 1)
        if is_raw:
            runtime.submit(payload, topic=topic, offset=line + 1)
        else:
            runtime.submit_event(_from_msgpack.decode(payload))
        nxt = bisect_right(rises, line, lo=nxt)
    fire_until(sys.maxsize)  # to the end: what the last lines passed fires, nothing after
    runtime.close()
    return actions, letters, runtime.pipeline.metrics.suppressions


def _fan_out(work: Callable[[int], T], n: int) -> list[T]:
    """`work(0)` … `work(n - 1)` in forked processes (they share this one's memory)."""
    if n == 1:
        return [work(0)]
    ctx = multiprocessing.get_context("fork")
    running = []
    for k in range(n):
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(work, k, send), daemon=True)
        proc.start()
        send.close()
        running.append((proc, recv))
    results = [recv.recv() for _, recv in running]
    for proc, _ in running:
        proc.join()
    for ok, result in results:
        if not ok:
            raise RuntimeError(f"a replay job failed:\n{result}")
    return [result for _, result in results]


def _child(work: Callable[[int], object], k: int, send: Connection) -> None:
    try:
        send.send((True, work(k)))
    except BaseException:  # the parent raises it, with the child's traceback
        send.send((False, traceback.format_exc()))


def replay_partitioned(events: str | Path, rules: RuleSet, policy: Policy, jobs: int,
                       data_dir: Path | None = None) -> Partitioned:
    """Replay `events` in `jobs` processes; outputs come out in the one-process order. With
    `data_dir`, each job keeps its final state in a directory of its own there (`job_dir`)."""
    with open_events(events) as f:
        lines = f.read().split(b"\n")
    topic = str(events)
    pipeline = Pipeline(rules, policy)
    step = -(-len(lines) // jobs)
    scans = _fan_out(lambda k: _scan(lines, k * step, min(len(lines), (k + 1) * step), topic,
                                     pipeline), jobs)
    lines.clear()  # the jobs need only the decoded events: fork less memory
    plan = _plan(scans, jobs)
    outputs = _fan_out(lambda j: _job(plan, j, rules, policy, topic, data_dir), len(plan.own))
    first = itemgetter(0)
    return Partitioned(
        events=sum(len(s.lines) + len(s.letters) for s in scans),
        actions=heapq.merge(*(a for a, _, _ in outputs), key=first),
        letters=heapq.merge(*(s.letters for s in scans), *(d for _, d, _ in outputs), key=first),
        held=sum((h for _, _, h in outputs), Counter()),
    )
