"""`kairos dead-letters list|replay`: what the dead-letter topic holds, and putting it back.

Both read the dead-letter topic from its start (or `--from-offset` in every partition) to the
end it had when the command started, with a consumer of their own outside any group: they
commit nothing, so they cannot move a group's offsets, and running one twice reads the same
letters twice. The summary prints where each partition ended, for a later `--from-offset`.

`replay` produces each matching letter's original record, unchanged bytes, back to the topic
it came from: its key, headers and timestamp as they were, to the partition the key gives (the
producer's default partitioner, as the original producer used) or, for a null key, to the
partition it was read from. Idempotent producer, `acks=all`. An event replayed twice is
decided once: the contact state remembers the event ids it saw.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from engine.config import Settings
from engine.model import deadletter
from engine.model.deadletter import DeadLetter

__all__ = ["Filter", "Replayed", "add_parser", "run"]

LIST_SHOWN = 50  # (reason, topic) rows `list` prints, the largest first


@dataclass(frozen=True)
class Filter:
    """Which letters a command takes: `reason` a category or any part of the reason, `source`
    the letter's input topic or source shape."""

    reason: str | None = None
    source: str | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.reason is not None and not (letter.category() == self.reason
                                            or self.reason in letter.reason):
            return False
        return self.source is None or self.source in (letter.topic, letter.source)


@dataclass
class Replayed:
    read: int = 0
    matched: int = 0
    produced: Counter[str] = field(default_factory=Counter)  # topic -> records
    unreplayable: int = 0  # matched, but no topic to go back to (or neither key nor value)
    undecodable: int = 0  # records on the topic that are not dead letters
    ends: dict[int, int] = field(default_factory=dict)  # partition -> next offset

    def render(self, dry_run: bool) -> str:
        verb = "would produce" if dry_run else "produced"
        lines = [f"read {self.read:,}, matched {self.matched:,}, {verb} "
                 f"{sum(self.produced.values()):,}"]
        lines += [f"  {topic}: {n:,}" for topic, n in sorted(self.produced.items())]
        if self.unreplayable:
            lines.append(f"skipped {self.unreplayable:,} with no original topic, or neither "
                         "key nor value")
        if self.undecodable:
            lines.append(f"skipped {self.undecodable:,} records that are not dead letters")
        lines.append("next offsets: " + ", ".join(f"{p}:{o}" for p, o in sorted(self.ends.items())))
        return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dead-letters", help="summarize the dead-letter topic, or replay it")
    actions = p.add_subparsers(dest="action", required=True)
    for name, text in (("list", "counts by reason and topic"),
                       ("replay", "produce the original records back to their topics")):
        a = actions.add_parser(name, help=text)
        a.add_argument("--topic", default=None, help="the dead-letter topic "
                       "(default KAIROS_TOPIC_DEAD_LETTERS)")
        a.add_argument("--reason", default=None, help="a category (`invalid JSON`) or any part "
                       "of the reason")
        a.add_argument("--source", default=None, help="the original topic, or source shape")
        a.add_argument("--from-offset", type=int, default=None,
                       help="start at this offset in every partition (default: the start)")
        a.add_argument("--limit", type=int, default=None, help="at most this many letters "
                       "matched")
        if name == "replay":
            a.add_argument("--dry-run", action="store_true", help="count, produce nothing")


def run(args: argparse.Namespace, settings: Settings) -> int:
    topic = args.topic or settings.topic_dead_letters
    only = Filter(args.reason, args.source)
    if args.action == "list":
        print(asyncio.run(_list(settings.bootstrap, topic, only, args.from_offset, args.limit)))
        return 0
    report = asyncio.run(replay(settings.bootstrap, topic, only, from_offset=args.from_offset,
                                limit=args.limit, dry_run=args.dry_run))
    print(report.render(args.dry_run))
    return 0


async def replay(bootstrap: str, topic: str, only: Filter, *, from_offset: int | None = None,
                 limit: int | None = None, dry_run: bool = False) -> Replayed:
    from aiokafka import AIOKafkaProducer

    report = Replayed()
    producer = None if dry_run else AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    if producer is not None:
        await producer.start()
    try:
        acks = []
        async for letter in _letters(bootstrap, topic, only, from_offset, limit, report):
            if letter.topic is None or letter.topic == topic or (
                    letter.value_null and letter.original_key() is None):
                report.unreplayable += 1
                continue
            report.produced[letter.topic] += 1
            if producer is not None:
                acks.append(await _produce(producer, letter))
        await asyncio.gather(*acks)
    finally:
        if producer is not None:
            await producer.stop()
    return report


async def _produce(producer: Any, letter: DeadLetter) -> asyncio.Future[Any]:
    """The original record, as it was read; the partition it was read from for a null key."""
    key = letter.original_key()
    partition = None
    if key is None and letter.partition is not None:
        known = await producer.partitions_for(letter.topic)
        partition = letter.partition if letter.partition in known else None
    log_append = letter.timestamp_type == 1  # the broker sets those again, whatever is sent
    future: asyncio.Future[Any] = await producer.send(
        letter.topic, letter.original(), key=key, partition=partition,
        headers=letter.original_headers(),
        timestamp_ms=None if log_append else letter.timestamp)
    return future


async def _list(bootstrap: str, topic: str, only: Filter, from_offset: int | None,
                limit: int | None) -> str:
    report = Replayed()
    counts: Counter[tuple[str, str]] = Counter()
    async for letter in _letters(bootstrap, topic, only, from_offset, limit, report):
        counts[(letter.category(), letter.topic or letter.source)] += 1
    lines = [f"{report.matched:,} of {report.read:,} dead letters on {topic}"]
    lines += [f"{n:>9,}  {reason}  ({where})" for (reason, where), n in
              counts.most_common(LIST_SHOWN)]
    if len(counts) > LIST_SHOWN:
        lines.append(f"… and {len(counts) - LIST_SHOWN} more (reason, topic) pairs")
    return "\n".join(lines)


async def _letters(bootstrap: str, topic: str, only: Filter, from_offset: int | None,
                   limit: int | None, report: Replayed) -> AsyncIterator[DeadLetter]:
    """The letters `only` matches, from the start (or `from_offset`) to the end the topic had
    when the command started; `report` counts what was read and where each partition ended."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tps = [TopicPartition(topic, p) for p in await _partitions(bootstrap, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                group_id=None, auto_offset_reset="earliest",
                                isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            start = starts[tp] if from_offset is None else max(from_offset, starts[tp])
            consumer.seek(tp, start)
            report.ends[tp.partition] = start
        left = {tp for tp in tps if report.ends[tp.partition] < ends[tp]}
        while left and (limit is None or report.matched < limit):
            batch = await consumer.getmany(*left, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    report.ends[tp.partition] = r.offset + 1
                    letter = _decoded(r.value, report)
                    if letter is not None and only.matches(letter):
                        report.matched += 1
                        yield letter
                        if limit is not None and report.matched >= limit:
                            return
            for tp in list(left):  # transaction markers end a partition without a record
                if await consumer.position(tp) >= ends[tp]:
                    report.ends[tp.partition] = max(report.ends[tp.partition], ends[tp])
                    left.discard(tp)
    finally:
        await consumer.stop()


async def _partitions(bootstrap: str, topic: str) -> list[int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (found,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if found["error_code"] or not found["partitions"]:
        raise SystemExit(f"error: topic {topic} not found")
    return sorted(p["partition"] for p in found["partitions"])


def _decoded(raw: bytes | None, report: Replayed) -> DeadLetter | None:
    report.read += 1
    try:
        return deadletter.decode(raw or b"")
    except ValueError:
        report.undecodable += 1
        return None
