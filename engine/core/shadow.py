"""Shadow rules: what a rule in `mode = "shadow"` would have done, decided beside the live rules.

A shadow rule's candidates go through the policy as if the rule were live: they are ranked
together with the live candidates of the same decision, under the same cool-downs, channel
choice, consent, caps, holdouts and quiet hours. That arbitration runs on a copy of the state,
so none of it is kept: only the shadow candidates' records (marked `shadow`) are appended to
the contact's decisions, and their would-be actions come back to be reported, never delivered.
Nothing a shadow action "did" enters the outbox, the contact history (caps, cool-downs), the
outcomes or the rule's fires, and a quiet-hours deferral sets no timer. The live rules are then
arbitrated alone, exactly as without the shadow rules.
"""

from __future__ import annotations

import msgspec

from engine.core.arbitration import Arbitration, Candidate, arbitrate
from engine.core.policy import Policy
from engine.model import state as state_codec
from engine.model.state import ContactState

__all__ = ["rehearse"]


def rehearse(
    state: ContactState, candidates: list[Candidate], now: float, policy: Policy
) -> tuple[list[Candidate], Arbitration | None]:
    """The live candidates, and the shadow ones' fates and would-be actions, decided as if
    their rules were live (ranked with the live candidates, in the order they were proposed);
    None for the latter when there is no shadow candidate.

    `state` only gains the shadow records; the arbitration itself runs on a copy of it.
    """
    if not candidates:  # most events propose nothing
        return candidates, None
    ids = {c.rule.id for c in candidates if c.rule.mode == "shadow"}
    if not ids:  # the usual case: no copy, no list made
        return candidates, None
    rehearsal = state_codec.decode(state_codec.encode(state))
    tried = arbitrate(rehearsal, candidates, now, policy)
    out = Arbitration(actions=[a for a in tried.actions if a.rule_id in ids])
    for record in tried.records:
        if record.rule_id in ids:
            kept = msgspec.structs.replace(record, shadow=True)
            state.record_decision(kept)
            out.records.append(kept)
    return [c for c in candidates if c.rule.id not in ids], out
