"""The pure core: `decide(state, key, message, now, rules, policy)` -> new state, actions, emits.

Read this module first. Everything the engine does for a contact happens here, in this order:

1. A contact that was merged away forwards what it receives to the contact it became.
2. Duplicate events (an event id already decided) change nothing.
3. `observe` learns from the event (consent revocations first), sent actions nothing came of
   within the policy's window are judged ignored, pending timers whose exit events just happened
   are cancelled, and the rules indexed on the event propose candidates.
4. `arbitrate` turns candidates into the next best action(s) under the contact policy; the
   candidates of rules in shadow mode are arbitrated first, as if live, on a copy of the state
   (`engine/core/shadow.py`), so they never change what the live rules decide.
5. An event saying an action can never be delivered offers the next channel its rule allowed
   (`engine/core/fallback.py`).

Before `observe`, the event's identifiers are admitted within the identity limits; a login's
`Unite` is decided here too, by the contact asked to merge (`engine/core/linking.py`).

No I/O, and no clock read that decides anything: `now` is passed in (processing time live, event
time in replays), so the same inputs give the same outputs in tests, replays and both runtimes.
The one clock read is `time.perf_counter` around each rule's run, for the `kairos_rule_seconds`
metric (`Decision.rule_seconds`); no output depends on it. `decide` takes ownership of the
`state` it is given and returns it (or a replacement) in the `Decision`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgspec

from engine.core.arbitration import DEFER_TIMER, Candidate, arbitrate, resumed
from engine.core.consent import migrate_addresses
from engine.core.fallback import failed_for_good, offer_fallback
from engine.core.identity import Emit, ToContacts, ToIdentity, identifiers, relink
from engine.core.items import interests
from engine.core.linking import Links, admit, unite
from engine.core.merge import merge
from engine.core.observe import Conversion, judge_ignored, keep_values, observe
from engine.core.policy import Policy
from engine.core.shadow import rehearse
from engine.errors import StateError
from engine.model import state as state_codec
from engine.model.actions import Action
from engine.model.events import Event
from engine.model.explained import DecisionRecord
from engine.model.messages import (
    ContactMessage,
    Deliver,
    FireTimer,
    Forget,
    Refused,
    Unite,
    Unlink,
)
from engine.model.state import ContactState, Timer
from engine.sdk.rule import Context, Rule
from engine.sdk.ruleset import RuleSet

MAX_HOPS = 16
MAX_TRANSITIONS = 3


@dataclass(slots=True)
class Decision:
    state: ContactState | None
    actions: list[Action] = field(default_factory=list)
    emits: list[Emit] = field(default_factory=list)
    changed: bool = False
    duplicate: bool = False
    erased: bool = False  # the contact was forgotten: delete its state
    rule_errors: list[tuple[str, str]] = field(default_factory=list)  # (rule id, reason)
    records: list[DecisionRecord] = field(default_factory=list)  # every candidate's fate
    refused: list[str] = field(default_factory=list)  # identifier kinds of refused merges/links
    rule_seconds: list[tuple[str, float]] = field(default_factory=list)  # (rule id, one run)
    conversions: list[Conversion] = field(default_factory=list)  # actions a purchase converted
    shadow_actions: list[Action] = field(default_factory=list)  # shadow rules', never delivered


def decide(
    state: ContactState | None,
    key: str,
    msg: ContactMessage,
    now: float,
    rules: RuleSet,
    policy: Policy,
) -> Decision:
    if isinstance(msg, Forget):
        return _forget(state, msg)
    if state is not None and state.merged_into is not None:
        return _forward(state, state.merged_into, msg)
    if isinstance(msg, Deliver):
        if state is None and msg.event.source == "catalogue":
            return Decision(None)  # forgotten since it showed an interest: it stays forgotten
        return _on_event(state or ContactState(contact_id=key), msg.event, now, rules, policy)
    if isinstance(msg, FireTimer):
        return _on_timer(state, msg, now, rules, policy)
    if isinstance(msg, Refused):
        if state is not None:
            state.record_refusal(msg.refusal)
        return Decision(state, changed=state is not None)
    links = Links()
    if isinstance(msg, Unite):
        if state is None or msg.other == key:
            return Decision(state)  # forgotten meanwhile (nothing to merge), or already one
        state = unite(state, msg, now, links)
    else:  # MergeIn: the incoming identifiers within the limits, then everything learned
        incoming = state_codec.decode(msg.state)
        state = state or ContactState(contact_id=key)
        admit(state, incoming.identifiers, now, policy.identity, links)
        state = merge(state, incoming)
    return Decision(state, emits=links.emits, changed=True, refused=links.refused)


def _on_event(
    state: ContactState, event: Event, now: float, rules: RuleSet, policy: Policy
) -> Decision:
    if not state.mark_seen(event.event_id):
        # Decided before (a redelivery after a crash, or a sender's retry): the same actions
        # again, never new ones; connectors drop the ids they already sent.
        return Decision(state, state.decided_for(event.event_id), duplicate=True)
    before = (state.stage, state.lifecycle)
    links = Links()
    migrate_addresses(state)  # before this event's identifiers: only what the state knew
    admit(state, identifiers(event), now, policy.identity, links)
    failed = failed_for_good(state, event)  # before observe gives the action its fate
    # A catalogue change is news for the contact, not something it did: nothing to learn.
    conversions = observe(state, event, policy) if event.source != "catalogue" else []
    if rules.values and event.source != "catalogue":
        keep_values(state, event, rules.values)
    judge_ignored(state, now, policy)
    _cancel_on_exit_events(state, event)
    decision = _decide(state, event, before, now, rules, policy, rules.for_event(event), None,
                       links)
    decision.conversions = conversions
    decision.emits += interests(state.contact_id, event)
    if failed is not None:
        offered = offer_fallback(state, failed, event, now, rules, policy)
        decision.actions += offered.actions
        decision.records += offered.records
    return decision


def _decide(
    state: ContactState, event: Event, before: tuple[str, str], now: float, rules: RuleSet,
    policy: Policy, proposers: tuple[Rule, ...], timer: Timer | None,
    links: Links | None = None,
) -> Decision:
    """The rules' candidates (and those of a stage or lifecycle change), arbitrated; with
    what linking the event's identifiers decided, if it linked any. `timer` is the one that
    woke the (single) proposer, None for an event."""
    errors: list[tuple[str, str]] = []
    candidates: list[Candidate] = []
    seconds: list[tuple[str, float]] = []
    ctx = Context(event, state, now, "", None)
    for r in proposers:
        _propose(r, ctx.for_rule(r.id, timer, r.mode == "shadow"), errors, candidates, seconds)
    if before != (state.stage, state.lifecycle):
        _transitions(state, event, before, now, rules, errors, candidates, seconds)
    live, shadowed = rehearse(state, candidates, now, policy)
    result = arbitrate(state, live, now, policy)
    links = links or Links()
    decision = Decision(state, result.actions, links.emits, changed=True, rule_errors=errors,
                        records=result.records, refused=links.refused, rule_seconds=seconds)
    if shadowed is not None:
        decision.records = shadowed.records + result.records
        decision.shadow_actions = shadowed.actions
    return decision


def _propose(
    r: Rule, ctx: Context, errors: list[tuple[str, str]], candidates: list[Candidate],
    seconds: list[tuple[str, float]],
) -> None:
    """Add one rule's candidates; a rule that raises loses its say, not the whole decision.
    How long the run took goes to `seconds`, for the metrics only."""
    started = time.perf_counter()
    try:
        for p in r.run(ctx):
            candidates.append(Candidate(r, p, ctx.event))
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"[:300]
        errors.append((r.id, reason))
        ctx.state.record_decision(
            DecisionRecord(
                at=ctx.now, trigger_event_id=ctx.event.event_id, rule_id=r.id, action="",
                outcome="error", reason=reason, shadow=r.mode == "shadow",
            )
        )
    seconds.append((r.id, time.perf_counter() - started))


def _transitions(
    state: ContactState,
    cause: Event,
    before: tuple[str, str],
    now: float,
    rules: RuleSet,
    errors: list[tuple[str, str]],
    found: list[Candidate],
    seconds: list[tuple[str, float]],
) -> None:
    """Stage and lifecycle changes are events too: rules on `on("stage", "decision")` run now.

    Followed up to `MAX_TRANSITIONS` deep, so rules moving each other's stages cannot loop.
    """
    for _ in range(MAX_TRANSITIONS):
        after = (state.stage, state.lifecycle)
        moves = [(k, v) for k, old, v in zip(("stage", "lifecycle"), before, after, strict=True)
                 if old != v]
        if not moves:
            break
        before = after
        for kind, value in moves:
            event = Event(
                event_id=f"{cause.event_id}:{kind}:{value}", source=cause.source, kind=kind,
                name=value, time=cause.time,
            )
            ctx = Context(event, state, now, "", None)
            for r in rules.for_event(event):
                _propose(r, ctx.for_rule(r.id, None, r.mode == "shadow"), errors, found, seconds)


def _cancel_on_exit_events(state: ContactState, event: Event) -> None:
    kind, name, props = event.kind, f"{event.kind}:{event.name}", event.properties
    state.drop_timers(lambda t: name in t.cancel_on or kind in t.cancel_on or bool(
        t.cancel_when and any(key in (name, kind) and all(
            props.get(k, _ABSENT) == v for k, v in where.items()) for key, where in t.cancel_when)))


_ABSENT = object()  # a filtered property the event lacks matches no value, not even None


def _on_timer(
    state: ContactState | None, msg: FireTimer, now: float, rules: RuleSet, policy: Policy
) -> Decision:
    timer = next((t for t in state.timers if t.timer_id == msg.timer_id), None) if state else None
    if state is None or timer is None:  # cancelled, or fired already (re-emit what it decided)
        return Decision(state, state.decided_for(f"timer:{msg.timer_id}") if state else [])
    state.drop_timers(lambda t: t.timer_id == timer.timer_id)
    judge_ignored(state, now, policy)
    r = rules.active(timer.rule_id)
    if r is None:
        return Decision(state, changed=True)  # rule removed or disabled since it was set
    if timer.name == DEFER_TIMER:  # an action held back by quiet hours: decide it again now
        result = arbitrate(state, [resumed(timer, r)], now, policy, deferred=True)
        return Decision(state, result.actions, changed=True, records=result.records)
    return _decide(state, timer_event(timer), (state.stage, state.lifecycle), now, rules,
                   policy, (r,), timer)


def timer_event(timer: Timer) -> Event:
    """A timer fires as an event of its own, so rules and action ids treat both alike."""
    return Event(
        event_id=f"timer:{timer.timer_id}",
        source="clickstream",
        kind="timer",
        name=timer.name,
        time=timer.due,
        properties=timer.payload,
    )


def _forget(state: ContactState | None, msg: Forget) -> Decision:
    """Erase the contact and every identity record of its identifiers; a merged-away contact
    passes the request on to the contact it merged into."""
    if state is None:
        return Decision(None)
    me = state.contact_id  # a device that moved on to another person keeps its record
    emits: list[Emit] = [ToIdentity(i, Unlink(identifier=i, contact_id=me))
                         for i in state.identifiers]
    if state.merged_into is not None:
        if msg.hops >= MAX_HOPS:
            raise StateError(f"contact {state.contact_id}: merge chain longer than {MAX_HOPS}; "
                         "the message goes to the dead letters, the state is kept")
        emits.append(ToContacts(state.merged_into, Forget(hops=msg.hops + 1)))
    return Decision(None, emits=emits, erased=True)


def _forward(state: ContactState, target: str, msg: ContactMessage) -> Decision:
    if isinstance(msg, FireTimer):
        return Decision(state)  # its timers moved with the state and fire there
    hops = msg.hops + 1
    if hops > MAX_HOPS:
        raise StateError(f"contact {state.contact_id}: merge chain longer than {MAX_HOPS}; "
                         "the message goes to the dead letters, the state is kept")
    emits: list[Emit] = []
    if isinstance(msg, Unite):
        fwd: ContactMessage = msgspec.structs.replace(msg, contact_id=target, hops=hops)
    else:
        fwd = msgspec.structs.replace(msg, hops=hops)
    if isinstance(msg, Deliver) and msg.via:
        emits.append(relink(msg.via, state.contact_id, target))
    emits.insert(0, ToContacts(target, fwd))
    return Decision(state, emits=emits)
