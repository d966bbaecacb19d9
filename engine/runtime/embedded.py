"""The embedded runtime: the whole pipeline in one process, no broker.

Messages between steps go through an in-process FIFO instead of Kafka topics; state lives in
RocksDB on local disk (or memory). With `clock="event"` (replays, backtests, the demo) time is
the events' own time and due timers fire as it passes them; with `clock="wall"` (live input)
time is the machine's clock and `tick()` fires due timers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from engine.core import identity
from engine.core.identity import Emit, ToContacts
from engine.model import state as state_codec
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.model.events import Event, Source, detect_source
from engine.model.messages import Catalogued, Deliver, FireTimer, Resolve
from engine.pipeline import Decided, Pipeline, Shadowed
from engine.runtime.timers import TimerIndex
from engine.storage import CachedItems, CachedStates, Caches, MemoryStore, RocksStore
from engine.topics import DEFAULT_INPUTS


class EmbeddedRuntime:
    def __init__(
        self,
        pipeline: Pipeline,
        *,
        data_dir: Path | None = None,
        on_action: Callable[[Action], None] = lambda a: None,
        on_shadow: Callable[[Action], None] = lambda a: None,
        on_dead_letter: Callable[[DeadLetter], None] = lambda d: None,
        on_timer: Callable[[str, FireTimer], None] = lambda key, msg: None,
        clock: Literal["event", "wall"] = "event",
    ) -> None:
        self.pipeline = pipeline
        self.on_action = on_action
        self.on_shadow = on_shadow  # what rules in shadow mode would have done (never delivered)
        self.on_dead_letter = on_dead_letter
        self.on_timer = on_timer  # told before each timer fires (a parallel replay orders by it)
        self.clock = clock
        self.identity: RocksStore | MemoryStore
        self.contacts: RocksStore | MemoryStore
        self.items: RocksStore | MemoryStore  # catalogue reference state and interested contacts
        if data_dir is None:
            self.identity, self.contacts, self.items = MemoryStore(), MemoryStore(), MemoryStore()
        else:
            self.identity = RocksStore(data_dir / "identity")
            self.contacts = RocksStore(data_dir / "contacts")
            self.items = RocksStore(data_dir / "items")
        # In memory nothing is durable anyway: write states back only when asked (flush/close).
        batch = 1024 if isinstance(self.contacts, RocksStore) else 1 << 62
        self.states = CachedStates(self.contacts, batch=batch,
                                   on_encoded=pipeline.metrics.state_bytes.observe)
        self.item_records = CachedItems(self.items, batch=batch)
        self.timers = TimerIndex()
        self.watermark = 0.0
        for _, raw in self.contacts.items():  # timers survive restarts: re-index them
            self.timers.track(state_codec.decode(raw))

    @property
    def cached(self) -> Caches:
        """Both decoded caches, written back and forgotten together."""
        return Caches(self.states, self.item_records)

    def now(self) -> float:
        return self.watermark if self.clock == "event" else time.time()

    def submit(
        self, raw: bytes, source: Source | None = None, topic: str | None = None, **where: object
    ) -> None:
        """One input message as bytes; bad input becomes a dead letter, never an exception.

        `topic` and `where` (offset, partition) name the origin in dead letters: a file's name
        and line number when replaying a file.
        """
        src = source or detect_source(raw)
        first = self.pipeline.ingest(src, raw, topic or DEFAULT_INPUTS[src], **where)
        if isinstance(first, DeadLetter):
            self.on_dead_letter(first)
            return
        routed = first.msg  # an event goes to identity, or straight to its contact (an outcome)
        if isinstance(routed, Catalogued):  # a catalogue record goes to its item
            self._advance_to(routed.time)
        else:
            assert isinstance(routed, Resolve | Deliver)
            self._advance_to(routed.event.time)
        self._run(first)

    def dead_letter(self, letter: DeadLetter) -> None:
        """Input refused before the pipeline saw it (at an HTTP edge): counted and kept alike."""
        self.pipeline.metrics.dead_letters[letter.category()] += 1
        self.on_dead_letter(letter)

    def submit_event(self, event: Event) -> None:
        self._advance_to(event.time)
        self._run(self.pipeline.route(event))

    def forget(self, who: str) -> None:
        """Right to be forgotten: a contact id or identifier, its state and identity records."""
        self._run(identity.erasure(who))

    def tick(self, now: float | None = None) -> None:
        """Fire every timer due by `now` (default: the runtime's clock)."""
        until = self.now() if now is None else now
        while due := self.timers.pop_due(until):  # a fired timer may index another due one
            for key, msg, _ in due:
                self.on_timer(key, msg)
                self._run(ToContacts(key, msg), at=msg.due if self.clock == "event" else until)
        if self.clock == "event":
            self.watermark = max(self.watermark, until)

    def _advance_to(self, t: float) -> None:
        if self.clock == "event" and t > self.watermark:
            due = self.timers.next_due()
            if due is not None and due <= t:
                self.tick(t)
            self.watermark = t

    def _run(self, first: Emit, at: float | None = None) -> None:
        """Every step in process (all are local here); `at` pins the clock (a timer's due)."""
        now = self.now if at is None else lambda: at
        for out in self.pipeline.drain(first, identity_store=self.identity, states=self.states,
                                       item_records=self.item_records, now=now):
            if isinstance(out, Decided):  # the most frequent output: one per contact step
                self.timers.track(out.state)
            elif isinstance(out, Action):
                self.on_action(out)
            elif isinstance(out, DeadLetter):
                self.on_dead_letter(out)
            elif isinstance(out, Shadowed):
                self.on_shadow(out.action)

    def flush(self) -> None:
        """Write every changed contact state and item record to the stores (reads of
        `contacts` and `items` see them)."""
        self.cached.flush()

    def close(self) -> None:
        """Write back and close the tables; states in memory go with the runtime, so they are
        not encoded for nothing (a replay's close would encode every contact it saw)."""
        if isinstance(self.contacts, RocksStore):
            self.flush()
        self.identity.close()
        self.contacts.close()
        self.items.close()
