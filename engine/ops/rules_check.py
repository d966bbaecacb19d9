"""`kairos rules check`: load a rules directory and try every rule before it meets real traffic.

Loading catches import errors, duplicate ids, unknown trigger kinds and unknown email or social
event names. A dry run then plays generated journeys (and fires their timers) through each rule
in the real core, and reports, per module and rule, what raised: an unknown channel, a wrong
type, a state field that does not exist. It also collects every (action, channel) a rule
proposed, and each one needs its message templates (engine/sdk/template_layout.py).

The limit of a dry run: an action only a rare state produces (a name built from data the
generated journeys never show) can escape it; such a rule's author ships those templates anyway,
and a connector then dead-letters an action whose template is missing, never sending filler.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.errors import RuleError
from engine.model.events import EMAIL_EVENTS, SOCIAL_ACTIONS
from engine.ops.generator import JourneyGenerator
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.rule import Context, Proposal, Rule
from engine.sdk.ruleset import RuleSet
from engine.sdk.template_layout import missing, templates_dir

__all__ = ["Proposed", "check", "dry_run", "untemplated"]

KNOWN_NAMES = {"email": EMAIL_EVENTS, "social": SOCIAL_ACTIONS}
DRY_RUN_CONTACTS = 150
LONGEST_TIMER = 400 * 86_400.0  # past a first-purchase anniversary



@dataclasses.dataclass
class Proposed:
    """What rules proposed in a dry run: rule id -> (action, channel) pairs, and a payload
    seen for each action (what `kairos templates check` renders the templates with)."""

    pairs: dict[str, set[tuple[str, str]]] = dataclasses.field(default_factory=dict)
    payloads: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


def check(
    directory: Path, templates: Path | None = None
) -> tuple[RuleSet | None, list[str]]:
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
    failures, proposed = dry_run(rules)
    where = templates_dir(directory, templates)
    return rules, problems + failures + untemplated(rules, proposed, where)


def untemplated(rules: RuleSet, proposed: Proposed, directory: Path) -> list[str]:
    """A line per rule, action and channel it can choose that has no template there."""
    return [
        f"{rules.rules[rule_id].source}: rule {rule_id!r}: action {action!r} can go out on "
        f"{channel} but {directory} has no template {names}"
        for rule_id, pairs in sorted(proposed.pairs.items())
        for action, channel, names in missing(directory, pairs)
    ]


def dry_run(rules: RuleSet) -> tuple[list[str], Proposed]:
    """What raised while generated journeys played through the rules, and what they proposed."""
    proposed = Proposed()
    recording = RuleSet((_recorded(r, proposed) for r in rules.rules.values()), rules.disabled)
    pipeline = Pipeline(recording)
    runtime = EmbeddedRuntime(pipeline, clock="event")
    for g in JourneyGenerator(DRY_RUN_CONTACTS, seed=3, bad_ratio=0):
        runtime.submit(g.value, g.source)
    runtime.tick(runtime.watermark + LONGEST_TIMER)
    runtime.close()
    counts = pipeline.metrics.rule_errors
    failures = [
        f"{rules.rules[rule_id].source}: rule {rule_id!r}: raised {counts[rule_id]} times "
        f"in a dry run over generated journeys: {reason}"
        for rule_id, reason in sorted(pipeline.rule_failures.items())
    ]
    return failures, proposed


def _recorded(rule: Rule, proposed: Proposed) -> Rule:
    """The rule, with every proposal it makes noted in `proposed` on the way out."""
    body = rule.body

    def noting(ctx: Context) -> list[Proposal]:
        out = body(ctx)
        found: Iterable[Proposal] = () if out is None else [out] if isinstance(
            out, Proposal) else out
        listed = list(found)
        pairs = proposed.pairs.setdefault(rule.id, set())
        pairs.update((p.action, channel) for p in listed for channel in p.channels)
        for p in listed:
            proposed.payloads.setdefault(p.action, dict(p.payload))
        return listed

    return dataclasses.replace(rule, body=noting)
