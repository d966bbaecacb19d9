"""Fallback: an action that can never be delivered on its channel goes to the next one its rule
allowed, under the policy as it is when the failure is known.

A permanent failure is a connector's `failed` outcome with `permanent: true` (an invalid number,
an unregistered device token, a provider whose breaker stayed open too long) or the email
provider's hard bounce of the action's message. When the action went out on one of several
channels, the arbitration kept the rest of its proposal (`ContactState.fallbacks`, bounded):
that candidate comes back now, with the failure as its trigger, and goes through cool-downs,
consent, reachability, caps and quiet hours like any other. The new action's id derives from
the first action's id and its channel, and only channels after the failed one are offered, so
each channel is tried at most once per original action and a chain of failures cannot loop.
When nothing is left to offer, a decision record says so (`kairos explain`).
"""

from __future__ import annotations

from engine.core.arbitration import Arbitration, arbitrate, revive
from engine.core.consent import hard_bounce
from engine.core.policy import Policy
from engine.model.events import Event
from engine.model.explained import DecisionRecord
from engine.model.outreach import FAILED, Contacted
from engine.model.state import ContactState
from engine.sdk.ruleset import RuleSet

__all__ = ["NO_FALLBACK", "failed_for_good", "offer_fallback"]

NO_FALLBACK = "no_fallback_channel"


def failed_for_good(state: ContactState, event: Event) -> Contacted | None:
    """The sent action the event says can never be delivered, the first time it is said.

    Read before `observe`, which gives the action its `failed` fate: a second report of the
    same failure (the connector's and the provider's) then offers nothing more."""
    aid = event.properties.get("action_id")
    if not isinstance(aid, str):
        return None
    permanent = event.kind == "outcome" and event.name == "failed" and bool(
        event.properties.get("permanent"))
    if not (permanent or hard_bounce(event)):
        return None
    sent = state.find_action(aid)
    if sent is None or sent.control or sent.fate == FAILED:
        return None
    return sent


def offer_fallback(
    state: ContactState, sent: Contacted, failure: Event, now: float, rules: RuleSet,
    policy: Policy,
) -> Arbitration:
    """The next channel the rule allowed for `sent`, decided now; or a record of why none."""
    kept = state.take_fallback(sent.action_id)
    rule = rules.active(sent.rule_id)
    if kept is None or rule is None:
        reason = NO_FALLBACK if kept is None else "rule_inactive"  # removed or disabled since
        record = DecisionRecord(
            at=now, trigger_event_id=failure.event_id, rule_id=sent.rule_id, action=sent.action,
            outcome="suppressed", reason=reason, action_id=sent.action_id,
            fallback_from=sent.channel,
        )
        state.record_decision(record)
        return Arbitration(records=[record])
    candidate = revive(kept.kept, rule, now, failure, (kept.origin, sent.channel))
    return arbitrate(state, [candidate], now, policy)
