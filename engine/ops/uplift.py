"""`kairos report uplift`: did the actions change behaviour, compared with the control group?

Replays recorded events (a live outcome log or a history) with the policy's holdouts, then,
per rule, compares the share of treated contacts and of held-out contacts who purchased within
the conversion window after the rule's first action for them. The difference comes with a 95%
confidence interval (Newcombe's method from Wilson score intervals, sound for small counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.policy import DAY, Policy
from engine.model import state as state_codec
from engine.model.actions import Action
from engine.model.events import epoch
from engine.model.state import ContactState
from engine.ops.replay import replay
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet

Z95 = 1.959963984540054


@dataclass
class Arm:
    contacts: int = 0
    converted: int = 0

    @property
    def rate(self) -> float:
        return self.converted / self.contacts if self.contacts else 0.0


@dataclass
class RuleUplift:
    rule_id: str
    treated: Arm = field(default_factory=Arm)
    control: Arm = field(default_factory=Arm)

    @property
    def uplift(self) -> float:
        return self.treated.rate - self.control.rate

    def interval(self) -> tuple[float, float] | None:
        """95% CI of the difference of rates, or None without both arms."""
        t, c = self.treated, self.control
        if not t.contacts or not c.contacts:
            return None
        lt, ut = wilson(t.converted, t.contacts)
        lc, uc = wilson(c.converted, c.contacts)
        d = self.uplift
        return (d - math.hypot(t.rate - lt, uc - c.rate), d + math.hypot(ut - t.rate, c.rate - lc))


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def uplift(events: Path, rules: RuleSet, policy: Policy) -> list[RuleUplift]:
    actions: list[Action] = []
    results: dict[str, RuleUplift] = {}

    def measure(runtime: EmbeddedRuntime) -> None:
        runtime.flush()
        first: dict[tuple[str, str], Action] = {}
        for a in actions:  # decision order: the first action per (rule, contact) counts
            root = _root(runtime, a.contact_id)
            first.setdefault((a.rule_id, root.contact_id), a)
            if root.contact_id not in states:
                states[root.contact_id] = root
        window = policy.conversion_window_days * DAY
        for (rule_id, contact), a in first.items():
            at = epoch(a.decided_at)
            bought = any(at < p.at <= at + window for p in states[contact].purchases)
            r = results.setdefault(rule_id, RuleUplift(rule_id))
            arm = r.control if a.control_group else r.treated
            arm.contacts += 1
            arm.converted += bought

    states: dict[str, ContactState] = {}
    replay(events, rules, policy=policy, before_close=measure, also=actions.append)
    return sorted(results.values(), key=lambda r: r.rule_id)


def _root(runtime: EmbeddedRuntime, contact_id: str) -> ContactState:
    key = contact_id
    while True:
        raw = runtime.contacts.get(key)
        st = state_codec.decode(raw) if raw is not None else ContactState(contact_id=key)
        if st.merged_into is None:
            return st
        key = st.merged_into


def render(results: list[RuleUplift], window_days: float) -> str:
    lines = [
        f"conversion = a purchase within {window_days:g} days after the rule's first action",
        f"{'rule':<32} {'treated':>14} {'control':>14} {'uplift':>9}  95% CI",
    ]
    for r in results:
        ci = r.interval()
        ci_text = f"[{ci[0]:+.1%}, {ci[1]:+.1%}]" if ci else "n/a (no control group)"
        t, c = r.treated, r.control
        lines.append(
            f"{r.rule_id:<32} {t.converted:>5}/{t.contacts:<5} {t.rate:>6.1%}"
            f"{c.converted:>5}/{c.contacts:<5} {c.rate:>6.1%} {r.uplift:>+8.1%}  {ci_text}"
        )
    return "\n".join(lines)
