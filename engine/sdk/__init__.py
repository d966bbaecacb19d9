"""What a rule author imports: `from engine.sdk import rule, on, on_timer, Context, Proposal`.

Python rules are functions decorated with `@rule`; declarative rules (TOML or YAML with CEL
conditions) compile to the same `Rule`. `RuleSet` loads a directory of both and indexes the
rules by the events that can trigger them. `engine.testing.Scenario` runs them in tests.
"""

from engine.errors import RuleError
from engine.sdk.catalogue import interest_since
from engine.sdk.rule import (
    CHANNELS,
    DAY,
    INTEREST_HALF_LIFE,
    Context,
    Proposal,
    Rule,
    Trigger,
    on,
    on_timer,
    rule,
)
from engine.sdk.ruleset import DEFAULT_RULES_DIR, RuleSet, load_rules

__all__ = [
    "CHANNELS",
    "DAY",
    "DEFAULT_RULES_DIR",
    "INTEREST_HALF_LIFE",
    "Context",
    "Proposal",
    "Rule",
    "RuleError",
    "RuleSet",
    "Trigger",
    "interest_since",
    "load_rules",
    "on",
    "on_timer",
    "rule",
]
