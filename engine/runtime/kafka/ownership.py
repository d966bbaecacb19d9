"""Which internal partitions this worker owns, and which of them it runs in process.

A message whose key falls in an internal partition this worker owns is handed to the next
step in process instead of a round trip through Kafka, but only once the worker has read
everything sent to that partition before: by others before the assignment, by itself since.
Until then its messages keep going through the topic, so a contact's messages are never
overtaken.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError

from engine.core.identity import Emit, ToContacts, ToIdentity, ToItems
from engine.model.deadletter import DeadLetter
from engine.model.events import Source
from engine.model.messages import decode_contact, decode_identity, decode_item
from engine.pipeline import Pipeline
from engine.storage.changelog import partition_of
from engine.topics import TABLES, Table


class Ownership:
    def __init__(self, internal: dict[Table, str], partitions: int) -> None:
        self.internal, self.partitions = internal, partitions
        self.owned: dict[Table, set[int]] = {t: set() for t in TABLES}
        self.inline: dict[Table, set[int]] = {t: set() for t in TABLES}  # owned and caught up
        # Internal partition -> the offset to read up to before going in-process: its end at
        # assignment, then past what this worker itself sent it meanwhile.
        self.catch_up: dict[TopicPartition, int] = {}
        self.sent_while_catching_up: dict[TopicPartition, asyncio.Future[Any]] = {}
        self.acks_in_flight: set[TopicPartition] = set()  # catching up; the commit awaits its acks
        self.ready = False  # every assigned changelog partition restored: the readiness gate
        self.recovery_seconds = 0.0

    def local(self, emit: Emit) -> bool:
        """The step for `emit` runs in this process: its partition is owned and caught up."""
        return partition_of(emit.key, self.partitions) in self.inline[emit.table]

    def sent(self, tp: TopicPartition, ack: asyncio.Future[Any]) -> None:
        """A message went to internal partition `tp`; if ours, it must be read before going
        in-process."""
        if tp in self.catch_up:
            self.sent_while_catching_up[tp] = ack

    def take_sent(self) -> dict[TopicPartition, asyncio.Future[Any]]:
        """The last sends to catching-up partitions, handed to a commit to await."""
        caught_up, self.sent_while_catching_up = self.sent_while_catching_up, {}
        self.acks_in_flight = set(caught_up)
        return caught_up

    def acknowledged(self, caught_up: dict[TopicPartition, asyncio.Future[Any]]) -> None:
        """Those sends were acknowledged: their partitions must be read past them."""
        for tp, ack in caught_up.items():
            if tp in self.catch_up:
                self.catch_up[tp] = max(self.catch_up[tp], ack.result().offset + 1)
        self.acks_in_flight.clear()

    def of_internal(self, tps: Iterable[TopicPartition]) -> dict[Table, set[int]]:
        """The internal partitions among `tps`, by table."""
        out: dict[Table, set[int]] = {}
        for table, topic in self.internal.items():
            ps = {tp.partition for tp in tps if tp.topic == topic}
            if ps:
                out[table] = ps
        return out

    def revoke(self, gone: dict[Table, set[int]]) -> None:
        for table, ps in gone.items():
            self.owned[table] -= ps
            self.inline[table] -= ps
        self.ready = False

    def own(self, table: Table, partitions: set[int]) -> None:
        """Newly assigned partitions, their changelogs restored."""
        self.owned[table] |= partitions

    async def start_catch_up(self, new: dict[Table, set[int]], consumer: AIOKafkaConsumer) -> None:
        """Newly owned partitions go in process from the start when nothing is in flight to
        them, else once they are caught up (`advance`)."""
        tps = [TopicPartition(self.internal[t], p) for t, ps in new.items() for p in ps]
        ends = await consumer.end_offsets(tps) if tps else {}
        for tp, end in ends.items():
            committed = await consumer.committed(tp)
            if end > (committed or 0):
                self.catch_up[tp] = end
            else:
                self.inline[self._table(tp)].add(tp.partition)

    async def advance(self, done: dict[TopicPartition, int], consumer: AIOKafkaConsumer) -> None:
        """After a batch (`done`: the positions it reached), move caught-up partitions in
        process."""
        for tp, end in list(self.catch_up.items()):
            table = self._table(tp)
            if tp.partition not in self.owned[table]:
                del self.catch_up[tp]
                continue
            if tp in self.sent_while_catching_up or tp in self.acks_in_flight:
                continue  # its own sends are not acknowledged yet: their offsets are unknown
            position = done.get(tp)
            if position is None:  # nothing read this batch: ask where the consumer stands
                with contextlib.suppress(asyncio.TimeoutError, IllegalStateError):
                    position = await asyncio.wait_for(consumer.position(tp), 0.05)
            if position is not None and position >= end:
                self.inline[table].add(tp.partition)
                del self.catch_up[tp]

    def _table(self, tp: TopicPartition) -> Table:
        return next(t for t, topic in self.internal.items() if topic == tp.topic)



def first_message(pipeline: Pipeline, inputs: Mapping[str, Source], internal: dict[Table, str],
                  topic: str, key: bytes | None, value: bytes | None, partition: int,
                  offset: int) -> tuple[Emit | DeadLetter, bool]:
    """What a consumed record asks of the pipeline, and whether it came from an internal
    partition this worker owns (then it runs here, caught up or not: reading those records is
    the catching up). An input's or an erasure's first hop may belong to another worker. A
    record that does not decode is a dead letter: nobody else writes the internal topics, but a
    worker never crashes on one."""
    if topic not in internal.values():
        where = {"partition": partition, "offset": offset}
        if topic in inputs:
            return pipeline.ingest(inputs[topic], value, topic, **where), False
        return pipeline.erasure(value, topic, **where), False
    text = key.decode() if key is not None else ""
    try:
        if topic == internal["identity"]:
            return ToIdentity(text, decode_identity(value or b"")), True
        if topic == internal["items"]:
            return ToItems(text, decode_item(value or b"")), True
        return ToContacts(text, decode_contact(value or b"")), True
    except Exception as exc:
        return pipeline.dead_letter(f"undecodable internal message: {exc}", "pipeline", value,
                                    topic=topic, partition=partition, offset=offset), True
