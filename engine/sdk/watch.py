"""Rules watched as they run: where one failed and which triggers ever matched.

A rule that raises in production loses its say and is counted (engine/core/decide.py); the
testing kit and `kairos rules check` want the exception itself, with the file and line in the
rule's own code, and want to know which of a rule's triggers no event ever matched (a typo in
an event name shows as silence). `Watched` wraps each rule's body to see both; exceptions go
on to the engine, which records them exactly as it would have.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable
from pathlib import Path

from engine.sdk.rule import Context, Proposal, Rule, RuleBody, Trigger
from engine.sdk.ruleset import RuleSet, line_in

__all__ = ["Watched", "describe", "origin"]


def origin(rule: Rule, exc: BaseException) -> str:
    """`file:line` of the deepest frame of the rule's own module; the rule's file alone when
    none of its lines is on the traceback (a declarative rule, an error in the engine)."""
    path = getattr(sys.modules.get(rule.module), "__file__", None)
    line = None if path is None else line_in(exc, path)
    name = Path(path).name if path is not None else rule.source
    return f"{name}:{line}" if line is not None else name


def describe(rule: Rule, exc: BaseException) -> str:
    """One line: where, which rule, and what it raised."""
    return f"{origin(rule, exc)}: rule {rule.id!r} raised {type(exc).__name__}: {exc}"


class Watched:
    """A rule set whose rules report here: `failures` (rule, exception) in the order they
    raised, and the (rule id, trigger) pairs an event matched."""

    def __init__(self, rules: RuleSet) -> None:
        self.failures: list[tuple[Rule, Exception]] = []
        self.matched: set[tuple[str, Trigger]] = set()
        self.original = rules
        self.rules = RuleSet((self._wrap(r) for r in rules.rules.values()), rules.disabled)

    def unmatched(self) -> list[str]:
        """A line per trigger of an enabled rule that no event matched."""
        return [
            f"{r.source}: rule {r.id!r}: trigger {t} matched no event"
            for r in self.original.rules.values() if r.id not in self.original.disabled
            for t in r.triggers if (r.id, t) not in self.matched
        ]

    def _wrap(self, rule: Rule) -> Rule:
        body = rule.body

        def run(ctx: Context) -> Iterable[Proposal] | Proposal | None:
            self.matched.update((rule.id, t) for t in rule.triggers if t.accepts(ctx.event))
            try:
                return body(ctx)
            except Exception as exc:
                self.failures.append((rule, exc))
                raise

        wrapped: RuleBody = run
        return dataclasses.replace(rule, body=wrapped)
