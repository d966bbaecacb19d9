"""The keyed steps both runtimes drive: decode, resolve identity, decide.

A runtime turns each input message into its first hop (`ingest`, `erasure`, `route`) and hands
it to `drain`, which runs every step this process owns, in FIFO order, with the stores for their
tables, and yields what is left for the runtime to move: actions, shadow rules' would-be actions
(`Shadowed`), dead letters, the states it decided (for the timer index) and messages for steps
another worker owns. This keeps runtimes
to I/O, ordering and storage while the business logic lives once, here and in the core.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import msgspec

from engine.core import identity, items
from engine.core.decide import Decision, decide
from engine.core.identity import Emit, ToIdentity, ToItems
from engine.core.policy import DEFAULT_POLICY, Policy
from engine.errors import DecodeError
from engine.model.actions import Action
from engine.model.catalogue import decode_item
from engine.model.deadletter import DeadLetter
from engine.model.events import Event, Source, decode
from engine.model.explained import DecisionRecord
from engine.model.messages import Catalogued, ContactMessage, IdentityMessage, ItemMessage, encode
from engine.model.state import ContactState
from engine.obs.metrics import RULE_BUCKETS, Histogram, Metrics
from engine.sdk.ruleset import RuleSet
from engine.storage import BytesStore, ItemStore, StateStore

log = logging.getLogger("kairos.pipeline")


class ErasureRequest(msgspec.Struct, forbid_unknown_fields=True):
    contact_id: str | None = None
    identifier: str | None = None


class Decided(msgspec.Struct, frozen=True, gc=False):
    """A contact step ran in this process: its state as written (None once forgotten), which
    the runtime's timer index tracks."""

    key: str
    state: ContactState | None


@dataclass(frozen=True, slots=True)
class Failures:
    """How a runtime's "decision failed" dead letters name their origin, and whether the
    traceback is logged too (a worker's operators read logs; a replay's read the letters)."""

    source: str = "contacts"
    topic: str | None = None
    logged: bool = False


class Shadowed(msgspec.Struct, frozen=True, gc=False):
    """What a rule in shadow mode would have done: reported, never delivered."""

    action: Action


# What `drain` yields: an emit it yields is one `local` refused, for the worker owning its key.
Output = Action | DeadLetter | Decided | Shadowed | Emit

IN_PROCESS = Failures()  # the embedded runtime's: the contact step's own letters
EXPOSED = {"chosen": "treated", "held_out": "control"}  # a record's outcome -> its action's arm


def _everything_local(_: Emit) -> bool:
    return True


class Pipeline:
    def __init__(
        self,
        rules: RuleSet,
        policy: Policy = DEFAULT_POLICY,
        metrics: Metrics | None = None,
    ) -> None:
        self.rules = rules
        self.policy = policy
        self.metrics = metrics or Metrics()
        self.rule_failures: dict[str, str] = {}  # rule id -> latest reason it raised

    def use_rules(self, rules: RuleSet) -> None:
        """Swap the rule set between two messages: every action names the version it used."""
        self.rules = rules

    def ingest(self, source: Source, raw: bytes | None, topic: str,
               **where: object) -> Emit | DeadLetter:
        """Bytes from an input topic: the first identity hop (the item hop for a catalogue
        record), or a dead letter saying why not (keeping a null value null, so a replay puts
        back exactly what came)."""
        self.metrics.events[topic] += 1
        if raw is None:
            return self.dead_letter("null value: a tombstone carries no event", source, raw,
                                    topic=topic, **where)
        try:
            if source == "catalogue":
                item, at = decode_item(raw)
                return ToItems(item.item_id, Catalogued(item=item, time=at))
            return identity.route(decode(source, raw))
        except DecodeError as exc:
            return self.dead_letter(str(exc), source, raw, topic=topic, **where)
        except Exception as exc:  # a decoder bug must cost one message, never the worker
            log.exception("undecodable message on %s", topic)
            return self.dead_letter(f"undecodable: {type(exc).__name__}: {exc}", source, raw,
                                    topic=topic, **where)

    def route(self, event: Event) -> Emit:
        return identity.route(event)

    def erasure(self, raw: bytes | None, topic: str, **where: object) -> Emit | DeadLetter:
        """An erasure request, `{"contact_id": …}` or `{"identifier": "email:…"}`: first hop."""
        try:
            request = msgspec.json.decode(raw or b"", type=ErasureRequest)
        except msgspec.DecodeError as exc:
            return self.dead_letter(f"erasure request: {exc}", "erasure", raw, topic=topic, **where)
        who = request.contact_id or request.identifier
        if not who or (request.identifier and ":" not in request.identifier):
            return self.dead_letter("erasure request: give contact_id, or identifier as kind:value",
                                    "erasure", raw, topic=topic, **where)
        return identity.erasure(who)

    def dead_letter(self, reason: str, source: str, raw: bytes | None,
                    **where: object) -> DeadLetter:
        letter = DeadLetter.of(reason, source, raw, **where)
        self.metrics.dead_letters[letter.category()] += 1
        return letter

    def drain(
        self,
        first: Emit,
        *,
        identity_store: BytesStore,
        states: StateStore,
        item_records: ItemStore,
        now: Callable[[], float],
        local: Callable[[Emit], bool] = _everything_local,
        failures: Failures = IN_PROCESS,
    ) -> Iterator[Output]:
        """Run `first` and every message it leads to whose step `local` says this process
        owns, in FIFO order; yield the rest for the runtime to move, as they arise.

        `first` is always run here (the runtime routed it, or read it from its own partition).
        `now` is read at each contact step. A decision that raises costs its message (a dead
        letter), never the runtime.
        """
        queue: deque[Emit] = deque((first,))
        here = True
        while queue:
            item = queue.popleft()
            if not here and not local(item):
                yield item
                continue
            here = False
            if isinstance(item, ToIdentity):
                queue.extend(self.on_identity(identity_store, item.key, item.msg))
                continue
            if isinstance(item, ToItems):
                queue.extend(self.on_item(item_records, item.key, item.msg))
                continue
            key, msg = item.key, item.msg
            try:
                out = self.on_contact(states, key, msg, now())
            except Exception as exc:  # a rule's bug must not stop the runtime
                if failures.logged:
                    log.exception("decision for %s failed", key)
                yield self.dead_letter(f"decision failed: {type(exc).__name__}: {exc}",
                                       failures.source, encode(msg), topic=failures.topic,
                                       key=key)
                continue
            yield Decided(key, out.state)
            queue.extend(out.emits)
            yield from out.actions
            for a in out.shadow_actions:
                yield Shadowed(a)

    def on_identity(self, store: BytesStore, key: str, msg: IdentityMessage) -> list[Emit]:
        record = store.get(key)
        result = identity.step(record.decode() if record is not None else None, key, msg,
                               self.policy.identity)
        if result.changed and result.record is not None:
            store[key] = result.record.encode()
        elif result.deleted:
            with contextlib.suppress(KeyError):
                del store[key]
        return result.emits

    def on_item(self, store: ItemStore, key: str, msg: ItemMessage) -> list[Emit]:
        result = items.step(store.load(key), key, msg)
        if result.changed and result.record is not None:
            store.save(key, result.record)
        return result.emits

    def on_contact(
        self, states: StateStore, key: str, msg: ContactMessage, now: float
    ) -> Decision:
        started = time.perf_counter()
        decision = decide(states.load(key), key, msg, now, self.rules, self.policy)
        if decision.erased:
            states.delete(key)
            log.info("contact %s forgotten", key)
        elif decision.changed and decision.state is not None:
            states.save(key, decision.state)
        for rule_id, reason in decision.rule_errors:
            self.metrics.rule_errors[rule_id] += 1
            if rule_id not in self.rule_failures:
                log.warning("rule %s raised (skipped; logged once): %s", rule_id, reason)
            self.rule_failures[rule_id] = reason
        for kind in decision.refused:
            self.metrics.merges_refused[kind] += 1
        if decision.duplicate:
            self.metrics.duplicates += 1
        for a in decision.actions:
            self.metrics.actions[(a.rule_id, a.channel)] += 1
        for r in decision.records:
            if r.shadow:
                self._count_shadow(r)
                continue
            self.metrics.candidates[r.rule_id] += 1
            if r.outcome != "chosen":
                self.metrics.suppressions[(r.rule_id, r.channel or "", r.reason)] += 1
        if decision.records or decision.conversions:
            self._rule_figures(decision, now)
        for rule_id, seconds in decision.rule_seconds:
            h = self.metrics.rule_seconds.get(rule_id)
            if h is None:
                h = self.metrics.rule_seconds[rule_id] = Histogram(RULE_BUCKETS)
            h.observe(seconds)
        for a in decision.shadow_actions:
            self.metrics.shadow_actions[(a.rule_id, a.channel)] += 1
        self.metrics.decision_latency.observe(time.perf_counter() - started)
        return decision

    def _rule_figures(self, decision: Decision, now: float) -> None:
        """When each rule last proposed, and its actions and conversions per arm (an action
        decided is a treated exposure, one held out a control one; shadow rules expose no one)."""
        m = self.metrics
        for r in decision.records:
            if m.rule_last_fired.get(r.rule_id, now) <= now:
                m.rule_last_fired[r.rule_id] = now
            if r.outcome in EXPOSED and not r.shadow:
                m.exposures[(r.rule_id, EXPOSED[r.outcome])] += 1
        for rule_id, control in decision.conversions:
            m.conversions[(rule_id, "control" if control else "treated")] += 1

    def _count_shadow(self, r: DecisionRecord) -> None:
        self.metrics.shadow_candidates[r.rule_id] += 1
        if r.outcome != "chosen":
            self.metrics.shadow_suppressions[(r.rule_id, r.channel or "", r.reason)] += 1
