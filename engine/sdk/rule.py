"""The rules SDK: what a data team imports to write a rule module.

A rule is a plain function decorated with `@rule`: it receives a `Context` (the event, the
contact's state, the time, and the rule's own memory and timers) and returns the candidate
actions it proposes. Rules do no I/O; they run inside the pure core, so a rule behaves the same
in tests, replays and production. A rule in `mode="shadow"` decides and is recorded like a
live one but delivers nothing and changes nothing live rules read (docs/rules.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from engine.model.actions import CHANNELS
from engine.model.events import Event
from engine.model.state import LIFECYCLES, STAGES, ContactState, RuleMemory, Timer
from engine.model.values import value_key
from engine.sdk.memory import MAX_MEMORY_DATA, Memory, bound_data, stored

__all__ = [
    "CHANNELS",
    "DAY",
    "INTEREST_HALF_LIFE",
    "MODES",
    "Context",
    "Proposal",
    "Rule",
    "Trigger",
    "on",
    "on_timer",
    "rule",
]

DAY = 86_400.0
# One interest model shared by every rule module, so scoring and nurturing agree on a score.
INTEREST_HALF_LIFE = 14 * DAY
ActionClass = Literal["marketing", "transactional", "mandatory"]
ACTION_CLASSES: tuple[str, ...] = get_args(ActionClass)
Mode = Literal["live", "shadow"]
MAX_COOLDOWN_KEY = 128  # a key is kept on every history entry it cools down
MODES: tuple[str, ...] = get_args(Mode)


@dataclass(frozen=True, slots=True)
class Trigger:
    """What wakes a rule: an event kind, optionally narrowed to a name and a category.

    `on("track", "Order Completed", category="baby")` wakes the rule only for orders with a
    baby product; without a category every event of that kind and name does.
    """

    kind: str
    name: str | None = None
    category: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind

    def __str__(self) -> str:
        return f"{self.key}@{self.category}" if self.category else self.key

    def accepts(self, event: Event) -> bool:
        """Whether this trigger wakes its rule for `event` (what the rule set's index finds)."""
        return self.kind == event.kind and self.name in (None, event.name) and (
            self.category is None or self.category in event.categories)


def on(kind: str, name: str | None = None, *, category: str | None = None) -> Trigger:
    return Trigger(kind, name, category)


def on_timer(name: str) -> Trigger:
    return Trigger("timer", name)


# What cancels a timer: a trigger or a "kind:name" key, alone or with the property values the
# event must carry (docs/rules.md, "Sequences and absences").
ExitEvent = Trigger | str | tuple[Trigger | str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Proposal:
    """A candidate action. Channels are in the rule's order of preference."""

    action: str
    channels: tuple[str, ...]
    priority: float = 50.0
    value: float = 1.0
    payload: Mapping[str, Any] = field(default_factory=dict)
    ttl: float = DAY
    cooldown: float = 0.0
    # marketing: every policy applies; transactional: no marketing consent, caps, quiet hours or
    # holdouts (still an address, hard bounces, erasure); mandatory: also wins arbitration.
    action_class: ActionClass = "marketing"
    group: str | None = None  # the subscription group (`newsletter`) whose consent it needs
    # The cool-down then holds per (action, key): "once per product per 30 days" keeps one action
    # name, so the action's statistics stay whole. Kept on the contact's history.
    cooldown_key: str | None = None

    def __post_init__(self) -> None:
        if self.cooldown_key is not None and not 0 < len(self.cooldown_key) <= MAX_COOLDOWN_KEY:
            raise ValueError(f"proposal {self.action!r}: a cooldown_key is a string of 1 to "
                             f"{MAX_COOLDOWN_KEY} characters, got {self.cooldown_key!r}")
        if self.action_class not in ACTION_CLASSES:
            raise ValueError(
                f"proposal {self.action!r}: unknown action_class {self.action_class!r} "
                f"(one of {ACTION_CLASSES})"
            )
        if not self.channels:
            raise ValueError(f"proposal {self.action!r}: needs at least one channel")
        if self.group is not None and (not self.group or "/" in self.group):
            raise ValueError(f"proposal {self.action!r}: a group is a non-empty name without '/', "
                             f"got {self.group!r}")
        for ch in self.channels:
            if ch not in CHANNELS:
                raise ValueError(
                    f"proposal {self.action!r}: unknown channel {ch!r} (one of {CHANNELS})"
                )
        if self.ttl <= 0:
            raise ValueError(f"proposal {self.action!r}: ttl must be positive, got {self.ttl}")


class Context:
    """What a rule sees and may change: the event, the state, the time, its memory and timers.

    A shadow rule keeps its own memory and timers, but its stage, lifecycle and score changes
    are not kept: live rules read those, and a shadow rule must not change what they decide.
    """

    __slots__ = ("acted", "declared", "event", "now", "rule_id", "shadow", "state", "timer")

    def __init__(
        self, event: Event, state: ContactState, now: float, rule_id: str, timer: Timer | None
    ) -> None:
        self.event = event
        self.state = state
        self.now = now
        self.rule_id = rule_id
        self.timer = timer
        self.acted = False
        self.shadow = False
        self.declared: tuple[tuple[str, str], ...] = ()  # the running rule's `values`

    def for_rule(self, rule_id: str, timer: Timer | None, shadow: bool = False) -> Context:
        """This context re-aimed at the next rule of the same decision.

        A decision runs several rules on one event; one context serves them all instead of an
        allocation per rule run (the rule runs are the hottest loop of the engine).
        """
        self.rule_id = rule_id
        self.timer = timer
        self.acted = False
        self.shadow = shadow
        return self

    # --- reading the contact -------------------------------------------------------------

    def count(self, key: str) -> int:
        """How often `key` (`kind`, `kind:name`, `kind:name@category`, `category@c`) happened."""
        return self.state.count(key)

    def count_within(self, key: str, seconds: float) -> int:
        """How often `key` happened in the last `seconds` (exact up to 10, then saturates)."""
        return self.state.count_within(key, seconds, self.now)

    def first_time(self, key: str) -> bool:
        """True when the event being decided is the first ever `key` for this contact."""
        return self.state.count(key) == 1

    def purchased(self, product_id: str | int, within: float | None = None) -> bool:
        """Whether the contact bought `product_id` (in the last `within` seconds, if given);
        the last `MAX_PURCHASES` orders are kept, each with its first product ids."""
        pid = str(product_id)
        return any(pid in p.products and (within is None or self.now - p.at < within)
                   for p in self.state.purchases if p.at <= self.now)

    def last(self, key: str, field: str, default: Any = None) -> Any:
        """`field` of the latest `key` event (`"track:Product Viewed"`, `"price"`), declared
        with `@rule(values=[(key, field)])`; `default` before any carried it."""
        held = self.state.values.get(self._declared(key, field))
        return default if held is None else held.last

    def max_within(self, key: str, field: str, seconds: float) -> float | None:
        """The largest number `field` had on `key` events in the last `seconds`, or None;
        declared like `last`."""
        held = self.state.values.get(self._declared(key, field))
        return None if held is None else held.max_within(seconds, self.now)

    def _declared(self, key: str, field: str) -> str:
        if (key, field) not in self.declared:
            raise ValueError(f"rule {self.rule_id!r}: reads {field!r} of {key!r} without "
                             f"declaring it: @rule(..., values=[({key!r}, {field!r})])")
        return value_key(key, field)

    def score(self, domain: str, half_life: float) -> float:
        """The domain's interest score decayed to now (use one half-life per domain)."""
        return self.state.score(domain, self.now, half_life)

    def add_score(self, domain: str, points: float, half_life: float) -> float:
        """The new score; in shadow mode the value it would have, the state left as it was."""
        if self.shadow:
            return self.state.score(domain, self.now, half_life) + points
        return self.state.add_score(domain, points, self.now, half_life)

    def interest(self, domain: str) -> float:
        """The contact's interest in a domain (a category), halving every 14 days of silence."""
        return self.state.score(domain, self.now, INTEREST_HALF_LIFE)

    def add_interest(self, domain: str, points: float) -> float:
        return self.add_score(domain, points, INTEREST_HALF_LIFE)

    def top_interest(self) -> tuple[str, float] | None:
        """The domain this contact is most interested in now, with its score."""
        scored = [(d, self.interest(d)) for d in self.state.scores]
        return max(scored, key=lambda ds: ds[1]) if scored else None

    # --- journey stage and lifecycle -----------------------------------------------------

    def set_stage(self, stage: str) -> bool:
        """Move the journey stage; rules on `on("stage", stage)` run in the same decision.
        A shadow rule only learns whether it would have moved it."""
        if stage not in STAGES:
            raise ValueError(f"rule {self.rule_id!r}: unknown stage {stage!r} (one of {STAGES})")
        changed = self.state.stage != stage
        if not self.shadow:
            self.state.stage = stage
        return changed

    def set_lifecycle(self, lifecycle: str) -> bool:
        """Move the lifecycle; rules on `on("lifecycle", lifecycle)` run in the same decision.
        A shadow rule only learns whether it would have moved it."""
        if lifecycle not in LIFECYCLES:
            raise ValueError(
                f"rule {self.rule_id!r}: unknown lifecycle {lifecycle!r} (one of {LIFECYCLES})"
            )
        changed = self.state.lifecycle != lifecycle
        if not self.shadow:
            self.state.lifecycle = lifecycle
        return changed

    @property
    def memory(self) -> Memory:
        """This rule's memory for this contact (created on first use)."""
        mem = self.state.memory.get(self.rule_id)
        if mem is None:
            mem = self.state.memory[self.rule_id] = RuleMemory()
        return Memory(mem, self.now, self.rule_id)

    def schedule(
        self,
        name: str,
        after: float,
        payload: Mapping[str, Any] | None = None,
        cancel_on: Iterable[ExitEvent] = (),
    ) -> Timer:
        """Wake this rule `after` seconds from now, unless an event in `cancel_on` comes first:
        a trigger (`on("track", "Order Completed")`) or a `"kind:name"` key, alone or with the
        property values the event must carry to cancel it: `(on("track", "Product Removed"),
        {"product_id": product})`."""
        plain, filtered = _exits(cancel_on)
        cause = self.event.event_id
        tid = hashlib.blake2b(f"{cause}|{self.rule_id}|{name}".encode(), digest_size=10).hexdigest()
        timer = Timer(
            timer_id=tid,
            name=name,
            rule_id=self.rule_id,
            due=self.now + after,
            set_at=self.now,
            cause_event_id=cause,
            cancel_on=plain,
            payload=dict(payload or {}),
            shadow=self.shadow,
            cancel_when=filtered,
        )
        self.state.add_timer(timer, replaces=name)
        self.acted = True
        return timer

    def cancel(self, name: str) -> None:
        """Drop this rule's pending timer called `name`, if any."""
        rule_id = self.rule_id
        self.state.drop_timers(lambda t: t.name == name and t.rule_id == rule_id)

    def pending(self, name: str) -> Timer | None:
        for t in self.state.timers:
            if t.rule_id == self.rule_id and t.name == name:
                return t
        return None


def _exits(
    cancel_on: Iterable[ExitEvent],
) -> tuple[tuple[str, ...], tuple[tuple[str, dict[str, Any]], ...]]:
    """The exit events as a timer keeps them: plain keys, and (key, property filter) pairs."""
    plain: list[str] = []
    filtered: list[tuple[str, dict[str, Any]]] = []
    for exit_event in cancel_on:
        if isinstance(exit_event, tuple):
            which, where = exit_event
            key = which.key if isinstance(which, Trigger) else which
            filtered.append((key, stored(dict(where))))
        else:
            plain.append(exit_event.key if isinstance(exit_event, Trigger) else exit_event)
    return tuple(plain), tuple(filtered)


RuleBody = Callable[[Context], "Iterable[Proposal] | Proposal | None"]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    version: int
    description: str
    triggers: tuple[Trigger, ...]
    body: RuleBody
    module: str = ""
    reentry: float = 0.0
    mode: Mode = "live"  # "shadow": decided and recorded, never delivered (docs/rules.md)
    # (event key, field) pairs whose values the state keeps for `ctx.last`, `ctx.max_within`
    values: tuple[tuple[str, str], ...] = ()

    @property
    def source(self) -> str:
        """The file the rule came from, as its author names it (`nurture.py`, `vip.toml`)."""
        prefix = "kairos_rules."
        return f"{self.module[len(prefix):]}.py" if self.module.startswith(prefix) else self.module

    def run(self, ctx: Context) -> list[Proposal]:
        """The rule's proposals, or none while the contact may not re-enter its flow.

        A rule "enters" a contact when, woken by an event, it proposes or schedules something;
        with `reentry` set it then ignores that contact's events for that long (its own timers
        still fire, so a multi-step flow runs to its end).
        """
        entering = ctx.timer is None
        if entering and self.reentry:
            mem = ctx.state.memory.get(self.id)
            entered = mem.entered if mem is not None else None
            if entered is not None and ctx.now - entered < self.reentry:
                return []
        ctx.declared = self.values
        out = self.body(ctx)
        mem = ctx.state.memory.get(self.id)
        if mem is not None and len(mem.data) > MAX_MEMORY_DATA:
            bound_data(mem)
        proposals = [] if out is None else [out] if isinstance(out, Proposal) else list(out)
        if entering and (proposals or ctx.acted):
            ctx.memory.entered = ctx.now
        return proposals


def rule(
    id: str,
    *,
    triggers: Iterable[Trigger],
    version: int = 1,
    description: str = "",
    reentry: float = 0.0,
    mode: Mode = "live",
    values: Iterable[tuple[str | Trigger, str]] = (),
) -> Callable[[RuleBody], Rule]:
    """Declare a rule: `@rule("cart-abandoned", triggers=[on("track", "Product Added")])`;
    `mode="shadow"` tries it without delivering anything; `values=[("track:Product Viewed",
    "price")]` keeps that field's values for `ctx.last` and `ctx.max_within`."""
    declared = tuple((k.key if isinstance(k, Trigger) else k, f) for k, f in values)

    def wrap(fn: RuleBody) -> Rule:
        return Rule(
            id=id,
            version=version,
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
            triggers=tuple(triggers),
            body=fn,
            module=fn.__module__,
            reentry=reentry,
            mode=mode,
            values=declared,
        )

    return wrap
