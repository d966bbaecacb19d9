"""What the engine learns from every event before any rule sees it.

Addresses, consent answers and hard suppressions are applied here, first, so an unsubscribe,
a spam report or a hard bounce takes effect before anything else about that event (or any
later one) is decided (engine/core/consent.py). Outcomes of earlier actions (opens, clicks,
bounces, purchases soon after) are credited to the action and channel they answer: the
propensity and suppression evidence. Each sent action is judged once: engaged on its first
positive outcome, failed on a bounce or failure, or ignored when nothing positive came within the
policy's `ignored_after_days` (`judge_ignored`, a sweep that costs nothing until one is due).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from engine.core.consent import (
    PREFERENCE_EVENTS,
    learn_addresses,
    learn_consent,
    learn_suppressions,
)
from engine.core.policy import DAY, DEFAULT_POLICY, Policy
from engine.model.actions import CHANNELS
from engine.model.events import Event
from engine.model.outreach import ENGAGED, FAILED, IGNORED, Contacted, Outcomes
from engine.model.state import (
    MAX_PURCHASE_PRODUCTS,
    MAX_TRAITS,
    STAGES,
    Account,
    ContactState,
    Purchase,
    Touch,
)
from engine.model.values import MAX_VALUES, observed, value_key

POSITIVE_EMAIL = ("open", "click")
NEGATIVE_EMAIL = ("bounce", "dropped")
PURCHASE_EVENTS = ("Order Completed",)
SIGNUP_EVENTS = ("Signed Up",)
Conversion = tuple[str, bool]  # (rule id, held out) of an action a purchase converted


def observe(
    state: ContactState, event: Event, policy: Policy = DEFAULT_POLICY
) -> list[Conversion]:
    """Learn from `event`; return the earlier actions its purchase converts, if it is one."""
    t = event.time
    state.first_seen = min(state.first_seen, t) if state.first_seen else t
    state.last_seen = max(state.last_seen, t)
    learn_addresses(state, event)
    learn_consent(state, event, policy)
    learn_suppressions(state, event)
    conversions = _outcomes(state, event, policy)
    state.bump(event.kind, t)
    base = f"{event.kind}:{event.name}"
    state.bump(base, t)
    for cat in event.categories:
        state.bump(f"{base}@{cat}", t)
        state.bump(f"category@{cat}", t)
    if event.timezone:
        state.timezone = event.timezone
    if event.location:
        state.location = event.location
    if event.locale:
        state.locale = event.locale
    if event.campaign:
        touch = Touch(event.campaign, t)
        state.campaign = latest(state.campaign, touch)
        state.first_campaign = earliest(state.first_campaign, touch)
    if event.kind == "identify":
        state.set_traits(event.traits)
    elif event.group_id:
        join_account(state, event.group_id, event.traits, t)
    if event.kind == "identify" or event.name in PREFERENCE_EVENTS:
        source = event.traits if event.kind == "identify" else event.properties
        pref = source.get("preferred_channel")
        if isinstance(pref, str) and pref in CHANNELS:
            state.preferred_channel = pref
    if event.kind == "track":
        if event.name in PURCHASE_EVENTS:
            _purchase(state, event)
        elif event.name in SIGNUP_EVENTS and state.lifecycle == "prospect":
            state.lifecycle = "lead"
    state.remember(event)
    return conversions


def keep_values(state: ContactState, event: Event, declared: Mapping[str, tuple[str, ...]]) -> None:
    """The event's fields some rule declared (`@rule(values=...)`), kept for `ctx.last` and
    `ctx.max_within`: properties, or an identify's traits."""
    source = event.traits if event.kind == "identify" else event.properties
    for key in (f"{event.kind}:{event.name}", event.kind):
        for name in declared.get(key, ()):
            if name not in source:
                continue
            vk, values = value_key(key, name), state.values
            if vk not in values and len(values) >= MAX_VALUES:
                del values[min(values, key=lambda k: values[k].at)]
            values[vk] = observed(values.get(vk), event.time, source[name])


Timed = TypeVar("Timed", Account, Touch)


def latest(held: Timed | None, given: Timed | None) -> Timed | None:
    """The newer by event time; `given` wins a tie (and is taken when nothing is held)."""
    if held is None or (given is not None and given.at >= held.at):
        return given
    return held


def earliest(held: Timed | None, given: Timed | None) -> Timed | None:
    """The older by event time; `held` wins a tie."""
    if held is None or (given is not None and given.at < held.at):
        return given
    return held


def join_account(state: ContactState, group_id: str, traits: dict[str, Any], t: float) -> None:
    """A group call: the contact's account is the newest one named; a call about the same
    account adds to its traits, each newer answer winning, within the traits' bound."""
    held = state.account
    if held is None or (held.group_id != group_id and t >= held.at):
        held = state.account = Account(group_id=group_id, at=t)
    elif held.group_id != group_id:
        return  # an older call about an account the contact has since left
    newer = t >= held.at
    held.at = max(held.at, t)
    kept = held.traits
    for k, v in traits.items():
        if (k in kept and newer) or (k not in kept and len(kept) < MAX_TRAITS):
            kept[k] = v


POSITIVE_OUTCOMES = ("opened", "clicked", "converted")
NEGATIVE_OUTCOMES = ("failed", "bounced", "ignored")
# Event kind -> (names that credit the action they name, names that count against it).
OUTCOME_SIGNALS = {"outcome": (POSITIVE_OUTCOMES, NEGATIVE_OUTCOMES),
                   "email": (POSITIVE_EMAIL, NEGATIVE_EMAIL)}


def _outcomes(state: ContactState, event: Event, policy: Policy) -> list[Conversion]:
    if event.kind == "track" and event.name in PURCHASE_EVENTS:
        return _converted(state, event.time, policy)
    signals = OUTCOME_SIGNALS.get(event.kind)  # a connector's report, or the provider's event
    aid = event.properties.get("action_id") if signals is not None else None
    sent = state.find_action(aid) if isinstance(aid, str) else None
    if signals is not None and sent is not None and not sent.control:
        o = state.outcome(sent.action, sent.channel)
        positive, negative = signals
        if event.name in positive:
            _positive(o)
            state.settle(sent, ENGAGED)
        elif event.name in negative and sent.fate not in (FAILED, IGNORED):  # counted once
            _negative(o, event.time, policy)
            state.settle(sent, FAILED)
    return []


def judge_ignored(state: ContactState, now: float, policy: Policy) -> None:
    """Every sent action nothing positive followed within the policy's window is ignored: a
    negative outcome, as of the moment the window closed. Runs on each event and timer of the
    contact but looks at the history only once the earliest pending judgement is due."""
    due = state.ignored_due
    if not due or now < due:
        return
    nxt = 0.0
    history = list(state.history)
    for i, h in enumerate(history):
        window = policy.ignored_window(h.channel)
        if h.fate or h.control or window <= 0:  # judged, held out, or a channel never judged
            continue
        closes = h.at + window
        if closes <= now:
            history[i] = msgspec.structs.replace(h, fate=IGNORED)
            _negative(state.outcome(h.action, h.channel), closes, policy)
        else:
            nxt = min(nxt, closes) if nxt else closes
    state.history = tuple(history)
    state.ignored_due = nxt


def _converted(state: ContactState, at: float, policy: Policy) -> list[Conversion]:
    """A purchase at `at` credits the latest treated action of the window before it (the
    propensity evidence) and converts every action of that window no purchase converted yet,
    held out or not: the live conversion figures, each action counted once."""
    window = policy.conversion_window_days * DAY
    history = state.history
    credited = False
    marked: list[Contacted] | None = None
    conversions: list[Conversion] = []
    for i in range(len(history) - 1, -1, -1):
        h = history[i]
        if at - h.at > window:
            break
        if h.at > at:
            continue
        engaged = not h.control and not credited
        if engaged:
            _positive(state.outcome(h.action, h.channel))
            credited = True
        if not h.converted or (engaged and not h.fate):
            marked = marked or list(history)
            marked[i] = msgspec.structs.replace(h, converted=True,
                                                fate=ENGAGED if engaged and not h.fate else h.fate)
        if not h.converted:
            conversions.append((h.rule_id, h.control))
    if marked is not None:
        state.history = tuple(marked)
    return conversions


def _positive(o: Outcomes) -> None:
    o.positive += 1
    o.negative_streak = 0


def _negative(o: Outcomes, at: float, policy: Policy) -> None:
    o.negative_streak += 1
    if o.negative_streak >= policy.negative_outcomes:
        o.suppressed_until = at + policy.suppress_days * DAY


def _purchase(state: ContactState, event: Event) -> None:
    revenue = event.properties.get("revenue", event.properties.get("total"))
    order_id = event.properties.get("order_id")
    state.add_purchase(
        Purchase(
            at=event.time,
            order_id=order_id if isinstance(order_id, str) else None,
            categories=event.categories,
            revenue=float(revenue) if isinstance(revenue, int | float) else None,
            products=product_ids(event.properties),
        )
    )
    state.lifecycle = "repeat" if state.lifecycle in ("customer", "repeat") else "customer"
    state.stage = STAGES[-1]


def product_ids(props: dict[str, Any]) -> tuple[str, ...]:
    """An order's product ids: its `product_id`, then each of its `products`' (`product_id`, or
    `sku`), in order, once each, at most `MAX_PURCHASE_PRODUCTS`; numbers kept as text."""
    items = props.get("products")
    found = [props.get("product_id")]
    if isinstance(items, list):
        found += [p.get("product_id", p.get("sku")) for p in items if isinstance(p, dict)]
    ids = [str(i) for i in found
           if isinstance(i, str | int) and not isinstance(i, bool) and i != ""]
    return tuple(dict.fromkeys(ids))[:MAX_PURCHASE_PRODUCTS]
