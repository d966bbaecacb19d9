"""Testing kit for rule authors: scripted events, a controllable clock, one call per step.

    from engine.testing import Scenario

    def test_cart_reminder():
        s = Scenario()                                   # shipped rules; or Scenario("my_rules/")
        s.track("u1", "Product Added", properties={"product_id": "sku-1"})
        s.advance(minutes=31)                            # due timers fire as time passes
        assert s.actions_for("cart-abandoned")[0].channel == "email"

Time is event time: each call happens at the scenario's clock, which starts at `START`
(2026-09-21T14:13:20Z, a Monday afternoon in UTC, outside the default quiet hours) and only
moves when you advance it. Everything runs through the real pipeline (identity, core,
arbitration), in memory, under the default contact policy (`DEFAULT_POLICY`: caps,
quiet hours, consent); `policy=Policy.load(UNLIMITED_POLICY)` opens it up for tests about a
rule rather than the policy (no caps, no quiet hours; consent still applies). What rules in
shadow mode would have done is in `shadow_actions`, never in `actions`.

A rule that raises fails the test: the call raises `RuleFailed`, naming the rule, its file
and line (`rule_errors="record"` keeps the engine's own behaviour instead: the rule loses its
say, the error is recorded in the contact's decisions). `unmatched_triggers()` lists the
triggers no event of the scenario matched, a misspelt event name's usual symptom.

`identify` and `track` (and `page`) take their payload alike: a dict (`traits={...}`,
`properties={...}`) or keyword fields (`email="a@b.c"`, `product_id="sku-1"`), not both;
Segment's own call fields (`anonymousId`, `context`, ..., a page's `category`) stay keywords.

`catalogue(item_id, price=…, availability=…)` sends a catalogue record: the first one for an
item sets its reference, a later one's change reaches the contacts interested in the item.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import orjson

from engine.core.policy import DEFAULT_POLICY, Policy
from engine.errors import RuleFailed
from engine.model import state as state_codec
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.model.events import iso
from engine.model.state import ContactState, RuleMemory
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.rule import Rule
from engine.sdk.ruleset import RuleSet
from engine.sdk.watch import Watched, describe

__all__ = ["UNLIMITED_POLICY", "Scenario"]

# A contact policy with no caps and no quiet hours: `policy=Policy.load(UNLIMITED_POLICY)` for
# tests about a rule rather than about the policy (consent still applies).
UNLIMITED_POLICY = Path(__file__).with_name("unlimited.toml")
START = 1_790_000_000.0  # 2026-09-21T14:13:20Z; any fixed instant keeps tests repeatable
# The top-level fields of a Segment call that are not its payload (`traits`, `properties`).
CALL_FIELDS = frozenset({"anonymousId", "userId", "previousId", "groupId", "context",
                         "timestamp", "messageId", "integrations"})
PAGE_FIELDS = CALL_FIELDS | {"category"}  # a page's category is the call's; a product's, a property


class Scenario:
    def __init__(
        self,
        rules: RuleSet | Iterable[Rule] | str | Path | None = None,
        *,
        policy: Policy = DEFAULT_POLICY,
        start: float = START,
        rule_errors: Literal["raise", "record"] = "raise",
    ) -> None:
        if rules is None:
            rules = RuleSet.load()
        elif isinstance(rules, str | Path):
            rules = RuleSet.load(rules)
        elif not isinstance(rules, RuleSet):
            rules = RuleSet(rules)
        if rule_errors not in ("raise", "record"):
            raise ValueError(f"rule_errors={rule_errors!r}: give 'raise' or 'record'")
        self.rule_errors = rule_errors
        self.watched = Watched(rules)
        self.actions: list[Action] = []
        self.dead_letters: list[DeadLetter] = []
        self.shadow_actions: list[Action] = []
        self.runtime = EmbeddedRuntime(
            Pipeline(self.watched.rules, policy),
            on_action=self.actions.append,
            on_shadow=self.shadow_actions.append,
            on_dead_letter=self.dead_letters.append,
            clock="event",
        )
        self.now = start
        self._ids = itertools.count(1)

    # --- the clock -------------------------------------------------------------------------

    def advance(self, *, days: float = 0, hours: float = 0, minutes: float = 0,
                seconds: float = 0) -> list[Action]:
        """Move the clock forward, firing due timers; returns the actions they decided."""
        self.now += days * 86_400 + hours * 3600 + minutes * 60 + seconds
        before = len(self.actions)
        self.runtime.tick(self.now)
        self._raise_rule_errors()
        return self.actions[before:]

    # --- events, in each source's wire shape -------------------------------------------------

    def track(self, user: str, event: str, properties: dict[str, Any] | None = None,
              **fields: Any) -> list[Action]:
        """`track("u1", "Order Completed", revenue=40)` or `properties={"revenue": 40}`."""
        props, call = _payload("properties", properties, fields)
        return self.segment("track", user, event=event, properties=props, **call)

    def page(self, user: str, name: str, properties: dict[str, Any] | None = None,
             **fields: Any) -> list[Action]:
        props, call = _payload("properties", properties, fields, PAGE_FIELDS)
        return self.segment("page", user, name=name, properties={"path": name, **props}, **call)

    def identify(self, user: str, traits: dict[str, Any] | None = None,
                 **fields: Any) -> list[Action]:
        """`identify("u1", email="a@b.c")` or `identify("u1", traits={"email": "a@b.c"})`."""
        given, call = _payload("traits", traits, fields)
        return self.segment("identify", user, traits=given, **call)

    def segment(self, kind: str, user: str, **fields: Any) -> list[Action]:
        """A Segment call; `user` is the userId unless it starts with `anon`."""
        who = {"anonymousId": user} if user.startswith("anon") else {"userId": user}
        call = {"messageId": self._id("m"), "type": kind, "timestamp": iso(self.now),
                **who, **fields}
        return self.send(orjson.dumps(call))

    def email(self, address: str, event: str, **fields: Any) -> list[Action]:
        ev = {"event": event, "email": address, "timestamp": self.now,
              "sg_event_id": self._id("sg"), **fields}
        return self.send(orjson.dumps(ev))

    def social(self, handle: str, action: str, network: str = "twitter",
               **fields: Any) -> list[Action]:
        ev = {"event_id": self._id("s"), "network": network, "action": action,
              "handle": handle, "timestamp": iso(self.now), **fields}
        return self.send(orjson.dumps(ev))

    def outcome(self, action: Action, outcome: str, **fields: Any) -> list[Action]:
        """A connector's report on an action (opened, clicked, failed, ...); `permanent=True`
        on a failure that never will succeed makes the engine offer the next channel."""
        report = {"outcome_id": f"{action.action_id}:{outcome}", "action_id": action.action_id,
                  "contact_id": action.contact_id, "channel": action.channel,
                  "action": action.action, "outcome": outcome, "timestamp": iso(self.now),
                  **fields}
        return self.send(orjson.dumps(report))

    def catalogue(self, item_id: str, *, price: float | None = None,
                  availability: str | None = None, currency: str | None = "EUR",
                  attributes: dict[str, Any] | None = None) -> list[Action]:
        """A catalogue record for `item_id` (the first one only sets its reference); returns
        the actions its change decided for the contacts interested in the item."""
        item = {"item_id": item_id, "price": price, "currency": currency,
                "availability": availability, "attributes": attributes or {},
                "timestamp": iso(self.now)}
        return self.send(orjson.dumps(item))

    def send(self, raw: bytes) -> list[Action]:
        """Raw wire bytes of any input shape; returns the actions this event decided."""
        before = len(self.actions)
        self.runtime.submit(raw)
        self._raise_rule_errors()
        return self.actions[before:]

    # --- looking at the outcome ------------------------------------------------------------

    def actions_for(self, rule_id: str) -> list[Action]:
        return [a for a in self.actions if a.rule_id == rule_id]

    def memory(self, user: str, rule_id: str) -> RuleMemory | None:
        """What a rule remembers about a contact (`ctx.memory`), None before it remembered."""
        return self.contact(user).memory.get(rule_id)

    def unmatched_triggers(self) -> list[str]:
        """A line per trigger of an enabled rule that no event of this scenario matched."""
        return self.watched.unmatched()

    def contact(self, identifier: str) -> ContactState:
        """The state of the contact an identifier (`user:u1`, `email:a@b.c`, …) resolves to."""
        if ":" not in identifier:
            identifier = f"user:{identifier}"
        self.runtime.flush()
        record = self.runtime.identity.get(identifier)
        if record is None:
            raise KeyError(f"no contact known by {identifier!r}")
        key = record.decode()
        while True:
            raw = self.runtime.contacts.get(key)
            if raw is None:
                return ContactState(contact_id=key)
            st = state_codec.decode(raw)
            if st.merged_into is None:
                return st
            key = st.merged_into

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def _raise_rule_errors(self) -> None:
        """The first rule error since the last call, raised (unless they are only recorded)."""
        failures, self.watched.failures = self.watched.failures, []
        if failures and self.rule_errors == "raise":
            rule, exc = failures[0]
            raise RuleFailed(f"{describe(rule, exc)} (Scenario(..., rule_errors='record') "
                             "records rule errors instead)") from exc


def _payload(name: str, given: dict[str, Any] | None, fields: dict[str, Any],
             own: frozenset[str] = CALL_FIELDS) -> tuple[dict[str, Any], dict[str, Any]]:
    """A call's payload (`traits` or `properties`) from a dict or keyword fields, and the
    call's own fields; both forms at once is refused, never nested."""
    call = {k: v for k, v in fields.items() if k in own}
    loose = {k: v for k, v in fields.items() if k not in own}
    if given is not None and loose:
        raise TypeError(f"{name}={{...}} and keyword fields {sorted(loose)} both given: "
                        f"put them all in {name}={{...}} or all as keywords")
    return (loose if given is None else dict(given)), call
