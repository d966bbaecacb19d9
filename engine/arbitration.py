"""Arbitration: many rules' candidates in, the next best action(s) out, every loser explained.

Candidates that no allowed channel can carry, or that are cooling down, are suppressed with a
reason; the rest are ranked by priority x value and the best `max_actions_per_decision` win.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.actions import Action, action_id
from engine.events import Event, iso
from engine.policy import Policy
from engine.rules import Proposal, Rule
from engine.state import Contacted, ContactState, DecisionRecord, RuleMemory


@dataclass(frozen=True, slots=True)
class Candidate:
    rule: Rule
    proposal: Proposal
    trigger: Event

    @property
    def score(self) -> float:
        return self.proposal.priority * self.proposal.value


def arbitrate(
    state: ContactState, candidates: list[Candidate], now: float, policy: Policy
) -> list[Action]:
    eligible: list[tuple[Candidate, str]] = []
    for cand in candidates:
        reason, channel = _eligibility(state, cand, now, policy)
        if channel is None:
            _record(state, cand, now, "suppressed", reason)
        else:
            eligible.append((cand, channel))
    eligible.sort(key=lambda pair: (-pair[0].score, pair[0].rule.id))
    keep = policy.max_actions_per_decision
    actions = []
    for cand, channel in eligible[:keep]:
        actions.append(_act(state, cand, channel, now))
    for cand, _ in eligible[keep:]:
        _record(state, cand, now, "suppressed", "outranked")
    return actions


def _eligibility(
    state: ContactState, cand: Candidate, now: float, policy: Policy
) -> tuple[str, str | None]:
    p = cand.proposal
    if p.cooldown:
        for h in reversed(state.history):
            if h.action == p.action and now - h.at < p.cooldown:
                return "cooling_down", None
    for channel in p.channels:
        if policy.allows(state, channel):
            return "", channel
    return "no_consent", None


def _act(state: ContactState, cand: Candidate, channel: str, now: float) -> Action:
    p, r, ev = cand.proposal, cand.rule, cand.trigger
    aid = action_id(ev.event_id, r.id, p.action)
    reason = f"{r.id} v{r.version}: {r.description}" if r.description else r.id
    state.record_contact(Contacted(now, channel, p.action, r.id, aid))
    mem = state.memory.setdefault(r.id, RuleMemory())
    mem.fires += 1
    mem.last_fired = now
    _record(state, cand, now, "chosen", "best score", channel, aid)
    action = Action(
        action_id=aid,
        contact_id=state.contact_id,
        channel=channel,
        action=p.action,
        rule_id=r.id,
        rule_version=r.version,
        score=round(cand.score, 6),
        reason=reason,
        trigger_event_id=ev.event_id,
        event_time=iso(ev.time),
        decided_at=iso(now),
        expires_at=iso(now + p.ttl),
        payload=dict(p.payload),
    )
    state.record_outbox(action)
    return action


def _record(
    state: ContactState,
    cand: Candidate,
    now: float,
    outcome: str,
    reason: str,
    channel: str | None = None,
    aid: str | None = None,
) -> None:
    state.record_decision(
        DecisionRecord(
            at=now,
            trigger_event_id=cand.trigger.event_id,
            rule_id=cand.rule.id,
            action=cand.proposal.action,
            outcome=outcome,
            reason=reason,
            channel=channel,
            action_id=aid,
        )
    )
