"""Loading rule modules and indexing their rules by trigger.

An event only meets the rules that can fire on it: the index maps `kind:name` and `kind` to
rules, so the cost of an event does not grow with the number of unrelated rules.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from engine.errors import RuleError
from engine.model.events import Event
from engine.model.segment import CALL_TYPES
from engine.sdk import declarative
from engine.sdk.rule import Rule, Trigger

DEFAULT_RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
DISABLED_FILE = "disabled.txt"
MAX_CACHED_NAMES = 10_000


class RuleSet:
    """The loaded rules, indexed by trigger; disabled rules are listed but never run."""

    def __init__(self, rules: Iterable[Rule], disabled: Iterable[str] = ()) -> None:
        self.disabled = frozenset(disabled)
        self.rules: dict[str, Rule] = {}
        for r in rules:
            if r.id in self.rules:
                raise RuleError(
                    f"{r.source}: duplicate rule id {r.id!r} (also in {self.rules[r.id].source})"
                )
            self.rules[r.id] = r
        self._index: dict[str, list[tuple[Rule, Trigger]]] = {}
        # (kind, name) -> its rules, or the triggers to check when a category narrows one
        self._by_name: dict[tuple[str, str], tuple[tuple[Rule, ...],
                                                   tuple[tuple[Rule, Trigger], ...]]] = {}
        for r in self.rules.values():
            if r.id in self.disabled:
                continue
            for t in r.triggers:
                self._index.setdefault(t.key, []).append((r, t))

    def for_event(self, event: Event) -> tuple[Rule, ...]:
        """The enabled rules one of whose triggers accepts the event, each once, in load order."""
        entry = self._by_name.get((event.kind, event.name))
        if entry is None:
            if len(self._by_name) >= MAX_CACHED_NAMES:  # names come from senders: stay bounded
                self._by_name.clear()
            entry = self._by_name[(event.kind, event.name)] = self._lookup(event.kind, event.name)
        rules, narrowed = entry
        if not narrowed:
            return rules
        found: list[Rule] = []
        for r, t in narrowed:
            if (t.category is None or t.category in event.categories) and all(
                    f is not r for f in found):
                found.append(r)
        return tuple(found)

    def _lookup(
        self, kind: str, name: str
    ) -> tuple[tuple[Rule, ...], tuple[tuple[Rule, Trigger], ...]]:
        """The rules for a kind and name; with the triggers to check when some need a category."""
        pairs = self._index.get(f"{kind}:{name}", []) + self._index.get(kind, [])
        if any(t.category is not None for _, t in pairs):
            return (), tuple(pairs)
        return tuple({id(r): r for r, _ in pairs}.values()), ()

    def active(self, rule_id: str) -> Rule | None:
        """The rule by id, unless it is unknown or disabled (its pending timers then no-op)."""
        return None if rule_id in self.disabled else self.rules.get(rule_id)

    def describe(self) -> str:
        return ", ".join(
            f"{r.id}@v{r.version}" + (" (disabled)" if r.id in self.disabled else "")
            for r in self.rules.values()
        )

    def __len__(self) -> int:
        return len(self.rules)

    @classmethod
    def load(cls, directory: Path | str = DEFAULT_RULES_DIR) -> RuleSet:
        """The rules of every module in `directory`, minus those listed in `disabled.txt`."""
        directory = Path(directory)
        return cls(load_rules(directory), read_disabled(directory))


def read_disabled(directory: Path) -> list[str]:
    path = directory / DISABLED_FILE
    if not path.exists():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def load_rules(directory: Path) -> list[Rule]:
    """Every rule of the `*.py` modules (not starting with `_`) and `*.toml`/`*.yaml` files."""
    if not directory.is_dir():
        raise RuleError(f"{directory}: rules directory not found")
    found: list[Rule] = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = f"kairos_rules.{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise RuleError(f"{path.name}: cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise RuleError(f"{path.name}: import failed: {exc!r}") from exc
        for value in vars(module).values():
            if isinstance(value, Rule) and value.module == name:
                _validate(path.name, value)
                found.append(value)
    for path in sorted(p for p in directory.iterdir() if p.suffix in declarative.SUFFIXES):
        try:
            rules = declarative.load_file(path)
        except declarative.DeclarativeError as exc:
            raise RuleError(str(exc)) from None
        for r in rules:
            _validate(path.name, r)
            found.append(r)
    return found


def _validate(module: str, r: Rule) -> None:
    if not r.id or not isinstance(r.version, int) or r.version < 1:
        raise RuleError(f"{module}: rule {r.id!r}: needs an id and a version >= 1")
    if not r.triggers:
        raise RuleError(f"{module}: rule {r.id!r}: has no trigger")
    known = {*CALL_TYPES, "email", "social", "timer", "stage", "lifecycle"}
    for t in r.triggers:
        if t.kind not in known:
            raise RuleError(
                f"{module}: rule {r.id!r}: unknown event kind {t.kind!r} "
                f"(expected one of {sorted(known)})"
            )
