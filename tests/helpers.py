"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

from engine.core.policy import Policy
from engine.sdk.ruleset import DEFAULT_RULES_DIR, RuleSet, load_rules

SPINE = ("first-purchase-in-category", "cart-abandoned", "email-click-related-content",
         "social-mention-follow-up")


def spine_rules() -> RuleSet:
    """The four small shipped rules the core's own tests are written against, whatever else
    ships: adding a rule module must not change what a core test means."""
    return RuleSet(r for r in load_rules(DEFAULT_RULES_DIR) if r.id in SPINE)


def module_rules(*sources: str) -> RuleSet:
    """The rules of some shipped modules only (`"scoring.py"`), to test them on their own."""
    return RuleSet(r for r in load_rules(DEFAULT_RULES_DIR) if r.source in sources)


def open_policy() -> Policy:
    """No caps and no quiet hours: for tests about a rule, not about the contact policy."""
    return Policy.load(UNLIMITED)


UNLIMITED = Path(__file__).parent / "policies" / "unlimited.toml"
