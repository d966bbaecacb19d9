"""The contact policy: which channels a contact may be reached on, and how many actions a decision
may keep. One typed object, so arbitration and its tests see every knob in one place.
"""

from __future__ import annotations

import msgspec

from engine.state import ContactState


class Policy(msgspec.Struct, kw_only=True, frozen=True):
    max_actions_per_decision: int = 1
    # Channels where silence is a "no": a contact must have opted in (e.g. SMS under TCPA/GDPR).
    opt_in_channels: frozenset[str] = frozenset({"sms", "push"})

    def allows(self, state: ContactState, channel: str) -> bool:
        """Consent: an explicit answer wins; otherwise opt-in channels say no, others yes."""
        answer = state.consents(channel)
        if answer is not None:
            return answer
        return channel not in self.opt_in_channels


DEFAULT_POLICY = Policy()
