"""The keyed steps both runtimes drive: decode, resolve identity, decide.

A runtime hands each message to the step for its topic together with the store for that step's
table, and moves what comes back (emits to other keyed steps, actions, dead letters). This keeps
runtimes to I/O and ordering while the business logic lives once, here and in the core.
"""

from __future__ import annotations

import contextlib
import logging
import time

import msgspec

from engine.core import identity
from engine.core.decide import Decision, decide
from engine.core.identity import Emit
from engine.core.policy import DEFAULT_POLICY, Policy
from engine.errors import DecodeError
from engine.model.deadletter import DeadLetter
from engine.model.events import Event, Source, decode
from engine.model.messages import ContactMessage, IdentityMessage
from engine.obs.metrics import Metrics
from engine.sdk.ruleset import RuleSet
from engine.storage import BytesStore, StateStore

log = logging.getLogger("kairos.pipeline")


class ErasureRequest(msgspec.Struct, forbid_unknown_fields=True):
    contact_id: str | None = None
    identifier: str | None = None


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

    def ingest(self, source: Source, raw: bytes, topic: str, **where: object) -> Emit | DeadLetter:
        """Bytes from an input topic: the first identity hop, or a dead letter saying why not."""
        self.metrics.events[topic] += 1
        try:
            return identity.route(decode(source, raw or b""))
        except DecodeError as exc:
            return self.dead_letter(str(exc), source, raw or b"", topic=topic, **where)
        except Exception as exc:  # a decoder bug must cost one message, never the worker
            log.exception("undecodable message on %s", topic)
            return self.dead_letter(f"undecodable: {type(exc).__name__}: {exc}", source,
                                    raw or b"", topic=topic, **where)

    def route(self, event: Event) -> Emit:
        return identity.route(event)

    def erasure(self, raw: bytes, topic: str, **where: object) -> Emit | DeadLetter:
        """An erasure request, `{"contact_id": …}` or `{"identifier": "email:…"}`: first hop."""
        try:
            request = msgspec.json.decode(raw, type=ErasureRequest)
        except msgspec.DecodeError as exc:
            return self.dead_letter(f"erasure request: {exc}", "erasure", raw, topic=topic, **where)
        who = request.contact_id or request.identifier
        if not who or (request.identifier and ":" not in request.identifier):
            return self.dead_letter("erasure request: give contact_id, or identifier as kind:value",
                                    "erasure", raw, topic=topic, **where)
        return identity.erasure(who)

    def dead_letter(self, reason: str, source: str, raw: bytes, **where: object) -> DeadLetter:
        letter = DeadLetter.of(reason, source, raw, **where)
        self.metrics.dead_letters[letter.category()] += 1
        return letter

    def on_identity(self, store: BytesStore, key: str, msg: IdentityMessage) -> list[Emit]:
        record = store.get(key)
        result = identity.step(record.decode() if record is not None else None, key, msg)
        if result.changed and result.record is not None:
            store[key] = result.record.encode()
        elif result.deleted:
            with contextlib.suppress(KeyError):
                del store[key]
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
        if decision.duplicate:
            self.metrics.duplicates += 1
        for a in decision.actions:
            self.metrics.actions[(a.rule_id, a.channel)] += 1
        for r in decision.records:
            self.metrics.candidates[r.rule_id] += 1
            if r.outcome != "chosen":
                self.metrics.suppressions[(r.rule_id, r.channel or "", r.reason)] += 1
        self.metrics.decision_latency.observe(time.perf_counter() - started)
        return decision
