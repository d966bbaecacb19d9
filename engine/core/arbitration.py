"""Arbitration: many rules' candidates in, the next best action(s) out, every loser explained.

For each candidate, in this order (docs/policy.md has the why of each):

1. cool-down: the same action was decided for this contact too recently -> `cooling_down`;
2. channel choice: the contact's preferred channel first if the rule allows it, then the rule's
   order; a channel is skipped without an address of the contact's (`unreachable`), when
   hard-suppressed (`hard_suppressed`), without consent for the proposal's group
   (`no_consent`), after repeated negative outcomes (`suppressed`) or over a cap (`capped`);
   when none is left, the first reason of a channel that could reach the contact is kept, or
   `unreachable` when none could;
3. ranking: mandatory actions first, then priority x value x propensity x levers, where the
   propensity is a Beta posterior over this contact's outcomes for that action and channel;
   beyond `max_actions_per_decision` -> `outranked`;
4. holdout: marketing actions for contacts in the global or the rule's control group are
   recorded with `control_group: true` (`held_out`), for uplift measurement, never delivered;
5. quiet hours in the contact's time zone: the action is deferred to the next allowed moment by
   a timer (`quiet_hours_deferred`), or dropped when it would expire first (`expired`).

A quiet-hours deferral and an action's fallback after a permanent failure keep the candidate
(`keep`) and bring it back (`revive`) through the same steps under the policy as it is then.

Transactional and mandatory actions skip marketing consent, caps, negative-outcome suppression,
quiet hours and holdouts; nothing skips reachability or a hard bounce, and a spam report blocks
marketing only (engine/core/consent.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from engine.core.consent import permits, recipient, undeliverable
from engine.core.policy import DAY, Policy
from engine.core.profile import profile
from engine.model.actions import Action, action_id
from engine.model.events import Event, iso
from engine.model.explained import DecisionRecord
from engine.model.outreach import FAILED, Contacted, Fallback
from engine.model.state import ContactState, RuleMemory, Timer
from engine.sdk.rule import Proposal, Rule

DEFER_TIMER = "policy:defer"


@dataclass(frozen=True, slots=True)
class Candidate:
    rule: Rule
    proposal: Proposal
    trigger: Event
    expires_at: float | None = None  # set when a deferred action comes back
    # (first action's id, channel it failed on) when offered after a permanent failure
    fallback: tuple[str, str] | None = None
    # (user id, anonymous id, email) of the input event behind a kept candidate, whose trigger
    # is then a stand-in; None: the trigger's own
    subject: tuple[str | None, str | None, str | None] | None = None

    def trigger_ids(self) -> tuple[str | None, str | None, str | None]:
        """Who the triggering input event named, for joining the action with the input."""
        if self.subject is not None:
            return self.subject
        ev = self.trigger
        return ev.user_id, ev.anonymous_id, ev.email

    def action_class(self, policy: Policy) -> str:
        return policy.rule(self.rule.id).action_class or self.proposal.action_class

    def group(self, policy: Policy) -> str | None:
        return policy.rule(self.rule.id).group or self.proposal.group

    def action_id(self, channel: str) -> str:
        """Deterministic: a fallback's from the first action's id and its channel, which it
        is offered on once at most."""
        if self.fallback is not None:
            return action_id(self.fallback[0], "fallback", channel)
        return action_id(self.trigger.event_id, self.rule.id, self.proposal.action)


@dataclass(slots=True)
class Arbitration:
    actions: list[Action] = field(default_factory=list)
    records: list[DecisionRecord] = field(default_factory=list)


def arbitrate(
    state: ContactState, candidates: list[Candidate], now: float, policy: Policy,
    *, deferred: bool = False,
) -> Arbitration:
    out = Arbitration()
    if not candidates:  # most events propose nothing
        return out
    ranked: list[tuple[float, Candidate]] = []
    for cand in candidates:
        reason = _cooling_down(state, cand, now)
        if reason:
            _record(state, out, cand, now, "suppressed", reason)
        else:
            ranked.append((_score(state, cand, policy), cand))
    ranked.sort(key=lambda sc: (sc[1].action_class(policy) != "mandatory", -sc[0], sc[1].rule.id))
    kept = 0
    for score, cand in ranked:
        if kept >= policy.max_actions_per_decision:
            _record(state, out, cand, now, "suppressed", "outranked")
            continue
        channel, reason = _channel(state, cand, now, policy)
        if channel is None:
            _record(state, out, cand, now, "suppressed", reason)
            continue
        kept += 1
        expires = cand.expires_at if cand.expires_at is not None else now + cand.proposal.ttl
        if now >= expires:
            _record(state, out, cand, now, "suppressed", "expired", channel)
            continue
        marketing = cand.action_class(policy) == "marketing"
        held_out = marketing and _held_out(state.contact_id, cand.rule.id, policy)
        if not held_out and not deferred and marketing:
            resume = _quiet_until(state.timezone, policy.channel(channel).quiet_hours, now)
            if resume is not None:
                if resume >= expires:
                    _record(state, out, cand, now, "suppressed", "expired", channel)
                else:
                    _defer(state, cand, channel, resume, expires, now)
                    _record(state, out, cand, now, "deferred", "quiet_hours_deferred", channel)
                continue
        out.actions.append(_act(state, out, cand, channel, score, now, expires, held_out, policy))
    return out


def _cooling_down(state: ContactState, cand: Candidate, now: float) -> str:
    """A keyed proposal cools down on its own key only; one without a key on any of its action."""
    p = cand.proposal
    if p.cooldown:
        key = p.cooldown_key
        for h in reversed(state.history):
            if (h.action == p.action and now - h.at < p.cooldown and h.fate != FAILED
                    and (key is None or h.key == key)):
                return "cooling_down"
    return ""


def _score(state: ContactState, cand: Candidate, policy: Policy) -> float:
    p = cand.proposal
    best = max(_propensity(state, p.action, ch, policy) * policy.channel(ch).lever
               for ch in p.channels)
    return p.priority * p.value * best * policy.rule(cand.rule.id).lever


def _propensity(state: ContactState, action: str, channel: str, policy: Policy) -> float:
    """Posterior mean of Beta(prior) after this contact's outcomes for the action on the channel."""
    alpha, beta = policy.channel(channel).prior
    o = state.outcomes.get(f"{action}|{channel}")
    if o is None:
        return alpha / (alpha + beta)
    return (alpha + o.positive) / (alpha + beta + max(o.sent, o.positive))


def _channel(
    state: ContactState, cand: Candidate, now: float, policy: Policy
) -> tuple[str | None, str]:
    p = cand.proposal
    order = _order(state, p.channels)
    marketing = cand.action_class(policy) == "marketing"
    group = cand.group(policy)
    reasons = []
    for ch in order:
        reason = undeliverable(state, ch, marketing) or (
            _refused(state, p.action, ch, group, now, policy) if marketing else "")
        if not reason:
            return ch, ""
        reasons.append(reason)
    return None, next((r for r in reasons if r != "unreachable"), "unreachable")


def _order(state: ContactState, channels: Sequence[str]) -> list[str]:
    """The rule's channels, the contact's preferred one first if the rule allows it."""
    order = list(channels)
    if state.preferred_channel in order:
        order.remove(state.preferred_channel)
        order.insert(0, state.preferred_channel)
    return order


def _refused(
    state: ContactState, action: str, channel: str, group: str | None, now: float, policy: Policy
) -> str:
    """Why a marketing action may not go out on a channel that can reach the contact."""
    if not permits(state, channel, group, policy):
        return "no_consent"
    o = state.outcomes.get(f"{action}|{channel}")
    if o is not None and o.suppressed_until > now:
        return "suppressed"
    cp = policy.channel(channel)
    caps = (cp.daily_cap, cp.weekly_cap, policy.global_daily_cap, policy.global_weekly_cap)
    recorded = len(state.history)
    for cap in caps:  # a loop, not all(): this runs for every channel of every candidate
        if cap is not None and cap <= recorded:
            break
    else:
        return ""  # even counting every recorded contact, no cap is reached
    used = [0, 0, 0, 0]  # in the same order as caps
    for h in state.history:
        if h.marketing and not h.control and now - h.at < 7 * DAY and h.fate != FAILED:
            today = now - h.at < DAY
            used[3] += 1
            used[2] += today
            if h.channel == channel:
                used[1] += 1
                used[0] += today
    if any(cap is not None and n >= cap for cap, n in zip(caps, used, strict=True)):
        return "capped"
    return ""


def _held_out(contact_id: str, rule_id: str, policy: Policy) -> bool:
    """Deterministic control groups: the same contact is always in or out of the same group."""
    salt, share = policy.holdout_salt, policy.rule(rule_id).holdout
    in_global = policy.holdout > 0 and _unit(f"{salt}|{contact_id}") < policy.holdout
    return in_global or (share > 0 and _unit(f"{salt}|{rule_id}|{contact_id}") < share)


def _unit(text: str) -> float:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@lru_cache(maxsize=512)
def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _quiet_until(timezone: str | None, hours: tuple[str, str] | None, now: float) -> float | None:
    """When quiet hours end, if `now` is inside them in the contact's own time zone."""
    if hours is None:
        return None
    local = datetime.fromtimestamp(now, _zone(timezone))
    start, end = (_minutes(h) for h in hours)
    if start == end:  # ["00:00", "00:00"]: no quiet hours (TOML has no null)
        return None
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else minute >= start or minute < end
    if not inside:
        return None
    resume = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if resume <= local:
        resume = (resume + timedelta(days=1)).replace(hour=end // 60, minute=end % 60)
    return resume.timestamp()


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _defer(
    state: ContactState, cand: Candidate, channel: str, resume: float, expires: float, now: float
) -> None:
    p = cand.proposal
    state.add_timer(Timer(
        timer_id=f"defer-{cand.action_id(channel)}", name=DEFER_TIMER, rule_id=cand.rule.id,
        due=resume, set_at=now, cause_event_id=cand.trigger.event_id,
        payload=keep(cand, [channel, *[c for c in p.channels if c != channel]], expires),
    ))


def keep(cand: Candidate, channels: Sequence[str], expires: float) -> dict[str, Any]:
    """A candidate as state keeps it to decide it again later: a quiet-hours deferral's
    timer, an action's fallback (engine/core/fallback.py)."""
    p = cand.proposal
    kept: dict[str, Any] = {
        "action": p.action, "channels": list(channels),
        "priority": p.priority, "value": p.value, "payload": dict(p.payload),
        "cooldown": p.cooldown, "action_class": p.action_class, "group": p.group,
        "expires_at": expires,
        **({"cooldown_key": p.cooldown_key} if p.cooldown_key is not None else {}),
        "trigger_event_id": cand.trigger.event_id, "trigger_time": cand.trigger.time,
        "trigger_ids": list(cand.trigger_ids()),
    }
    if cand.fallback is not None:
        kept["fallback"] = list(cand.fallback)
    return kept


def revive(
    kept: dict[str, Any], rule: Rule, now: float, trigger: Event | None = None,
    fallback: tuple[str, str] | None = None,
) -> Candidate:
    """A kept candidate back for a decision at `now` under the policy as it is now; its own
    trigger unless another is given (the failure a fallback answers)."""
    d = kept
    proposal = Proposal(
        action=d["action"], channels=tuple(d["channels"]), priority=d["priority"],
        value=d["value"], payload=d["payload"], ttl=max(d["expires_at"] - now, 1.0),
        cooldown=d["cooldown"], action_class=d["action_class"], group=d.get("group"),
        cooldown_key=d.get("cooldown_key"),
    )
    if trigger is None:
        trigger = Event(event_id=d["trigger_event_id"], source="clickstream", kind="timer",
                        name=DEFER_TIMER, time=d["trigger_time"])
    if fallback is None and "fallback" in d:
        fallback = (d["fallback"][0], d["fallback"][1])
    ids = d.get("trigger_ids")  # absent from what was kept before actions carried them
    subject = (ids[0], ids[1], ids[2]) if ids else None
    return Candidate(rule, proposal, trigger, expires_at=d["expires_at"], fallback=fallback,
                     subject=subject)


def resumed(timer: Timer, rule: Rule) -> Candidate:
    """The candidate a quiet-hours timer kept, back for a decision under the policy as it is now."""
    return revive(timer.payload, rule, timer.due)


def _act(
    state: ContactState, out: Arbitration, cand: Candidate, channel: str, score: float,
    now: float, expires: float, held_out: bool, policy: Policy,
) -> Action:
    p, r, ev = cand.proposal, cand.rule, cand.trigger
    user_id, anonymous_id, email = cand.trigger_ids()
    aid = cand.action_id(channel)
    marketing = cand.action_class(policy) == "marketing"
    state.record_contact(Contacted(now, channel, p.action, r.id, aid, marketing, held_out,
                                   key=p.cooldown_key or ""))
    if not held_out:
        state.outcome(p.action, channel).sent += 1
        _await_outcome(state, cand, channel, aid, now, expires, policy)
    mem = state.memory.setdefault(r.id, RuleMemory())
    mem.fires += 1
    mem.last_fired = now
    reason = f"{r.id} v{r.version}: {r.description}" if r.description else r.id
    if cand.fallback is not None:
        reason = f"fallback from {cand.fallback[1]}: {reason}"
    _record(state, out, cand, now, "held_out" if held_out else "chosen",
            "held_out" if held_out else f"best score {score:.4g}", channel, aid)
    action = Action(
        action_id=aid, contact_id=state.contact_id, channel=channel, action=p.action,
        rule_id=r.id, rule_version=r.version, score=round(score, 6), reason=reason,
        trigger_event_id=ev.event_id, event_time=iso(ev.time), decided_at=iso(now),
        expires_at=iso(expires), payload=dict(p.payload), control_group=held_out,
        action_class=cand.action_class(policy), recipient=recipient(state, channel),
        group=cand.group(policy) or msgspec.UNSET,
        profile=profile(state),
        trigger_user_id=_given(user_id), trigger_anonymous_id=_given(anonymous_id),
        trigger_email=_given(email),
    )
    state.record_outbox(action)
    return action


def _given(value: str | None) -> str | msgspec.UnsetType:
    return msgspec.UNSET if value is None else value


def _await_outcome(
    state: ContactState, cand: Candidate, channel: str, aid: str, now: float, expires: float,
    policy: Policy,
) -> None:
    """A sent action is judged ignored if nothing positive follows within the policy's window
    (engine/core/observe.py); one with channels left after its own keeps them for a fallback."""
    window = policy.ignored_window(channel)
    if window > 0:
        due = now + window
        state.ignored_due = min(state.ignored_due, due) if state.ignored_due else due
    order = _order(state, cand.proposal.channels)
    rest = order[order.index(channel) + 1:]
    if rest:
        origin = cand.fallback[0] if cand.fallback is not None else aid
        state.record_fallback(Fallback(aid, origin, channel, cand.rule.id,
                                       keep(cand, rest, expires)))


def _record(
    state: ContactState, out: Arbitration, cand: Candidate, now: float, outcome: str,
    reason: str, channel: str | None = None, aid: str | None = None,
) -> None:
    record = DecisionRecord(
        at=now, trigger_event_id=cand.trigger.event_id, rule_id=cand.rule.id,
        action=cand.proposal.action, outcome=outcome, reason=reason, channel=channel,
        action_id=aid, fallback_from=cand.fallback[1] if cand.fallback is not None else None,
        cooldown_key=cand.proposal.cooldown_key,
    )
    state.record_decision(record)
    out.records.append(record)
