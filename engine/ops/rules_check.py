"""`kairos rules check`: load a rules directory and try every rule before it meets real traffic.

Loading catches import errors (a syntax error with its file and line), duplicate ids, unknown
trigger kinds and unknown email or social event names. A dry run then plays generated journeys
(and fires their timers) through each rule in the real core and, with `--events FILE`, the
author's own sample events too, and reports, per rule, what raised with the file and line in
the rule's module: an unknown channel or action class in a proposal, a wrong type, a state
field that does not exist, a field a CEL condition reads that an event lacks. Triggers no
sample event matched are warnings (a misspelt event name), not failures. It also collects
every (action, channel) a rule proposed, and each one needs its message templates
(engine/sdk/template_layout.py).

The limit of a dry run: an action only a rare state produces (a name built from data the
generated journeys never show) can escape it; such a rule's author ships those templates anyway,
and a connector then dead-letters an action whose template is missing, never sending filler.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from engine.errors import RuleError
from engine.model.events import EMAIL_EVENTS, SOCIAL_ACTIONS, Source
from engine.ops.generator import JourneyGenerator
from engine.ops.history import read_lines
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.rule import Context, Proposal, Rule
from engine.sdk.ruleset import RuleSet
from engine.sdk.template_layout import missing, templates_dir
from engine.sdk.watch import Watched, describe, origin

__all__ = ["Checked", "Proposed", "check", "check_loaded", "dry_run", "untemplated"]

KNOWN_NAMES = {"email": EMAIL_EVENTS, "social": SOCIAL_ACTIONS}
DRY_RUN_CONTACTS = 150
LONGEST_TIMER = 400 * 86_400.0  # past a first-purchase anniversary



@dataclasses.dataclass
class Proposed:
    """What rules proposed in a dry run: rule id -> (action, channel) pairs, and a payload
    seen for each action (what `kairos templates check` renders the templates with)."""

    pairs: dict[str, set[tuple[str, str]]] = dataclasses.field(default_factory=dict)
    payloads: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    unmatched: list[str] = dataclasses.field(default_factory=list)  # the sample's, if one


@dataclasses.dataclass
class Checked:
    """The loaded rules (None if they do not load), every problem found (each fails the
    check) and warnings (which do not), one line each."""

    rules: RuleSet | None
    problems: list[str]
    warnings: list[str] = dataclasses.field(default_factory=list)


def check(directory: Path, templates: Path | None = None, events: Path | None = None) -> Checked:
    """Load, dry-run (over `events` too, when given) and look for templates."""
    try:
        rules = RuleSet.load(directory)
    except RuleError as exc:
        return Checked(None, [str(exc)])
    return check_loaded(rules, directory, templates, events)


def check_loaded(rules: RuleSet, directory: Path, templates: Path | None = None,
                 events: Path | None = None) -> Checked:
    """The checks past loading, on rules loaded from `directory` (all, or those that load)."""
    problems = [
        f"{r.source}: rule {r.id!r}: unknown {t.kind} event {t.name!r} "
        f"(one of {', '.join(KNOWN_NAMES[t.kind])})"
        for r in rules.rules.values()
        for t in r.triggers
        if t.kind in KNOWN_NAMES and t.name is not None and t.name not in KNOWN_NAMES[t.kind]
    ]
    failures, proposed = dry_run(rules, events)
    where = templates_dir(directory, templates)
    return Checked(rules, problems + failures + untemplated(rules, proposed, where),
                   proposed.unmatched)


def untemplated(rules: RuleSet, proposed: Proposed, directory: Path) -> list[str]:
    """A line per rule, action and channel it can choose that has no template there."""
    return [
        f"{rules.rules[rule_id].source}: rule {rule_id!r}: action {action!r} can go out on "
        f"{channel} but {directory} has no template {names}"
        for rule_id, pairs in sorted(proposed.pairs.items())
        for action, channel, names in missing(directory, pairs)
    ]


def dry_run(rules: RuleSet, events: Path | None = None) -> tuple[list[str], Proposed]:
    """What raised while generated journeys (and the `events` given) played through the rules,
    a line per rule and input; and what they proposed."""
    proposed = Proposed()
    recording = RuleSet((_recorded(r, proposed) for r in rules.rules.values()), rules.disabled)
    generated = ((g.value, g.source) for g in JourneyGenerator(DRY_RUN_CONTACTS, seed=3,
                                                               bad_ratio=0))
    _, failures = _play(recording, generated, "generated journeys")
    if events is not None:
        sample, more = _play(recording, ((raw, None) for _, raw in read_lines(events)),
                             str(events))
        failures += more
        proposed.unmatched = [f"{line} in {events}" for line in sample.unmatched()]
    return failures, proposed


def _play(rules: RuleSet, inputs: Iterator[tuple[bytes, Source | None]],
          what: str) -> tuple[Watched, list[str]]:
    """The inputs through the rules in event time, every timer fired; a line per rule that
    raised: its first exception, where, and how often."""
    watched = Watched(rules)
    runtime = EmbeddedRuntime(Pipeline(watched.rules), clock="event")
    for raw, source in inputs:
        runtime.submit(raw, source)
    runtime.tick(runtime.watermark + LONGEST_TIMER)
    runtime.close()
    # a line per rule, place and kind of exception: a second bug in a rule is not hidden
    counts: Counter[tuple[str, str, str]] = Counter()
    first: dict[tuple[str, str, str], str] = {}
    for r, exc in watched.failures:
        key = (r.id, origin(r, exc), type(exc).__name__)
        counts[key] += 1
        first.setdefault(key, describe(r, exc))
    return watched, [f"{first[key]} ({n} times in a dry run over {what})"
                     for key, n in sorted(counts.items())]


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
