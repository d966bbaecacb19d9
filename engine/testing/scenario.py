"""Testing kit for rule authors: scripted events, a controllable clock, one call per step.

    from engine.testing import Scenario

    def test_cart_reminder():
        s = Scenario()                                   # shipped rules; or Scenario("my_rules/")
        s.track("u1", "Product Added", properties={"product_id": "sku-1"})
        s.advance(minutes=31)                            # due timers fire as time passes
        assert s.actions_for("cart-abandoned")[0].channel == "email"

`catalogue(item_id, price=…, availability=…)` sends a catalogue record: the first one for an
item sets its reference, a later one's change reaches the contacts interested in the item.

Time is event time: each call happens at the scenario's clock, which only moves when you
advance it. Everything runs through the real pipeline (identity, core, arbitration), in memory.
What rules in shadow mode would have done is in `shadow_actions`, never in `actions`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from engine.core.policy import DEFAULT_POLICY, Policy
from engine.model import state as state_codec
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.model.events import iso
from engine.model.state import ContactState
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.rule import Rule
from engine.sdk.ruleset import RuleSet

__all__ = ["UNLIMITED_POLICY", "Scenario"]

# A contact policy with no caps and no quiet hours: `policy=Policy.load(UNLIMITED_POLICY)` for
# tests about a rule rather than about the policy (consent still applies).
UNLIMITED_POLICY = Path(__file__).with_name("unlimited.toml")
START = 1_790_000_000.0  # 2026-09-21T13:33:20Z; any fixed instant keeps tests repeatable


class Scenario:
    def __init__(
        self,
        rules: RuleSet | Iterable[Rule] | str | Path | None = None,
        *,
        policy: Policy = DEFAULT_POLICY,
        start: float = START,
    ) -> None:
        if rules is None:
            rules = RuleSet.load()
        elif isinstance(rules, str | Path):
            rules = RuleSet.load(rules)
        elif not isinstance(rules, RuleSet):
            rules = RuleSet(rules)
        self.actions: list[Action] = []
        self.dead_letters: list[DeadLetter] = []
        self.shadow_actions: list[Action] = []
        self.runtime = EmbeddedRuntime(
            Pipeline(rules, policy),
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
        return self.actions[before:]

    # --- events, in each source's wire shape -------------------------------------------------

    def track(self, user: str, event: str, **fields: Any) -> list[Action]:
        return self.segment("track", user, event=event, **fields)

    def page(self, user: str, name: str, **fields: Any) -> list[Action]:
        props = {"path": name, **fields.pop("properties", {})}
        return self.segment("page", user, name=name, properties=props, **fields)

    def identify(self, user: str, **traits: Any) -> list[Action]:
        return self.segment("identify", user, traits=traits)

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
        return self.actions[before:]

    # --- looking at the outcome ------------------------------------------------------------

    def actions_for(self, rule_id: str) -> list[Action]:
        return [a for a in self.actions if a.rule_id == rule_id]

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
