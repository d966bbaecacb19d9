"""`kairos rules check`: load a rules directory and try every rule before it meets real traffic.

Loading catches import errors, duplicate ids, unknown trigger kinds and unknown email or social
event names. A dry run then plays generated journeys (and fires their timers) through each rule
in the real core, and reports, per module and rule, what raised: an unknown channel, a wrong
type, a state field that does not exist.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import RuleError
from engine.model.events import EMAIL_EVENTS, SOCIAL_ACTIONS
from engine.ops.generator import JourneyGenerator
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet

KNOWN_NAMES = {"email": EMAIL_EVENTS, "social": SOCIAL_ACTIONS}
DRY_RUN_CONTACTS = 150
LONGEST_TIMER = 400 * 86_400.0  # past a first-purchase anniversary


def check(directory: Path) -> tuple[RuleSet | None, list[str]]:
    """The loaded rules (None if they do not load) and every problem found, one line each."""
    try:
        rules = RuleSet.load(directory)
    except RuleError as exc:
        return None, [str(exc)]
    problems = [
        f"{r.source}: rule {r.id!r}: unknown {t.kind} event {t.name!r} "
        f"(one of {', '.join(KNOWN_NAMES[t.kind])})"
        for r in rules.rules.values()
        for t in r.triggers
        if t.kind in KNOWN_NAMES and t.name is not None and t.name not in KNOWN_NAMES[t.kind]
    ]
    return rules, problems + dry_run(rules)


def dry_run(rules: RuleSet) -> list[str]:
    pipeline = Pipeline(rules)
    runtime = EmbeddedRuntime(pipeline, clock="event")
    for g in JourneyGenerator(DRY_RUN_CONTACTS, seed=3, bad_ratio=0):
        runtime.submit(g.value, g.source)
    runtime.tick(runtime.watermark + LONGEST_TIMER)
    runtime.close()
    counts = pipeline.metrics.rule_errors
    return [
        f"{rules.rules[rule_id].source}: rule {rule_id!r}: raised {counts[rule_id]} times "
        f"in a dry run over generated journeys: {reason}"
        for rule_id, reason in sorted(pipeline.rule_failures.items())
    ]
