"""Loading rule modules and indexing their rules by trigger.

An event only meets the rules that can fire on it: the index maps `kind:name` and `kind` to
rules, so the cost of an event does not grow with the number of unrelated rules.

Beside the rule files, `disabled.txt` lists rules that never run and `modes.txt` overrides a
rule's own mode (`rule-id shadow` or `rule-id live` a line): both travel in a deploy's bundle.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import cast

from engine.errors import RuleError
from engine.model.events import Event
from engine.model.segment import CALL_TYPES
from engine.sdk import declarative
from engine.sdk.rule import MODES, Mode, Rule, Trigger

DEFAULT_RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
DISABLED_FILE = "disabled.txt"
MODES_FILE = "modes.txt"
MAX_CACHED_NAMES = 10_000


class RuleSet:
    """The loaded rules, indexed by trigger; disabled rules are listed but never run. `modes`
    (from `modes.txt`) overrides rules' own modes; naming a rule not loaded is an error."""

    def __init__(self, rules: Iterable[Rule], disabled: Iterable[str] = (),
                 modes: Mapping[str, Mode] | None = None) -> None:
        self.disabled = frozenset(disabled)
        self.rules: dict[str, Rule] = {}
        for r in rules:
            if r.id in self.rules:
                raise RuleError(
                    f"{r.source}: duplicate rule id {r.id!r} (also in {self.rules[r.id].source})"
                )
            self.rules[r.id] = r
        for rule_id, mode in (modes or {}).items():
            if rule_id not in self.rules:
                raise RuleError(f"{MODES_FILE}: no rule {rule_id!r} is loaded")
            self.rules[rule_id] = dataclasses.replace(self.rules[rule_id], mode=mode)
        self._index: dict[str, list[tuple[Rule, Trigger]]] = {}
        # (kind, name) -> its rules, or the triggers to check when a category narrows one
        self._by_name: dict[tuple[str, str], tuple[tuple[Rule, ...],
                                                   tuple[tuple[Rule, Trigger], ...]]] = {}
        # event key -> the fields of its events some enabled rule declared (`values=`)
        self.values: dict[str, tuple[str, ...]] = {}
        for r in self.rules.values():
            if r.id in self.disabled:
                continue
            for t in r.triggers:
                self._index.setdefault(t.key, []).append((r, t))
            for key, name in r.values:
                if name not in self.values.get(key, ()):
                    self.values[key] = (*self.values.get(key, ()), name)

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
            if t.accepts(event) and all(f is not r for f in found):
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
            + (" (shadow)" if r.mode == "shadow" else "")
            for r in self.rules.values()
        )

    def __len__(self) -> int:
        return len(self.rules)

    @classmethod
    def load(cls, directory: Path | str = DEFAULT_RULES_DIR) -> RuleSet:
        """The rules of every module in `directory`, minus those listed in `disabled.txt`,
        in the modes `modes.txt` gives them."""
        directory = Path(directory)
        return cls(load_rules(directory), read_disabled(directory), read_modes(directory))


def _lines(path: Path) -> list[str]:
    """The lines of a list file without comments and blank lines; none when it is absent."""
    if not path.exists():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def read_disabled(directory: Path) -> list[str]:
    return _lines(directory / DISABLED_FILE)


def read_modes(directory: Path) -> dict[str, Mode]:
    """`modes.txt`: rule id -> mode, one `rule-id shadow|live` a line."""
    modes: dict[str, Mode] = {}
    for line in _lines(directory / MODES_FILE):
        words = line.split()
        if len(words) != 2 or words[1] not in MODES:
            raise RuleError(f"{MODES_FILE}: {line!r}: expected `rule-id mode`, mode one of "
                            f"{MODES}")
        modes[words[0]] = cast(Mode, words[1])
    return modes


def set_disabled(directory: Path, rule_id: str, disabled: bool) -> bool:
    """Add `rule_id` to `disabled.txt` or take it out; False for an unknown rule."""
    if rule_id not in {r.id for r in load_rules(directory)}:
        return False
    ids = [i for i in read_disabled(directory) if i != rule_id] + ([rule_id] if disabled else [])
    (directory / DISABLED_FILE).write_text("".join(f"{i}\n" for i in ids))
    return True


def set_mode(directory: Path, rule_id: str, mode: Mode) -> bool:
    """Write `rule_id`'s mode to `modes.txt` (the other lines kept); False for an unknown rule."""
    if rule_id not in {r.id for r in load_rules(directory)}:
        return False
    modes = {**read_modes(directory), rule_id: mode}
    (directory / MODES_FILE).write_text("".join(f"{i} {m}\n" for i, m in modes.items()))
    return True


def load_rules(directory: Path) -> list[Rule]:
    """Every rule of the `*.py` modules (not starting with `_`) and `*.toml`/`*.yaml` files."""
    found, broken = load_each(directory)
    if broken:
        raise broken[0]
    return found


def load_each(directory: Path) -> tuple[list[Rule], list[RuleError]]:
    """The rules of every file that loads, and why each other file does not (`rules list`
    shows both)."""
    if not directory.is_dir():
        raise RuleError(f"{directory}: rules directory not found; give the directory of your "
                        "rule modules (--rules/--dir, or KAIROS_RULES_DIR)")
    found: list[Rule] = []
    broken: list[RuleError] = []
    modules = [p for p in sorted(directory.glob("*.py")) if not p.name.startswith("_")]
    for path in [*modules, *sorted(p for p in directory.iterdir()
                                    if p.suffix in declarative.SUFFIXES)]:
        try:
            found += _load_file(path)
        except RuleError as exc:
            broken.append(exc)
    return found, broken


def _load_file(path: Path) -> list[Rule]:
    if path.suffix in declarative.SUFFIXES:
        try:
            rules = declarative.load_file(path)
        except declarative.DeclarativeError as exc:
            raise RuleError(str(exc)) from None
    else:
        rules = _import(path)
    for r in rules:
        _validate(path.name, r)
    return rules


def _import(path: Path) -> list[Rule]:
    name = f"kairos_rules.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuleError(f"{path.name}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise RuleError(f"{path.name}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except Exception as exc:
        line = line_in(exc, str(path))
        raise RuleError(f"{path.name}{'' if line is None else f':{line}'}: import failed: "
                        f"{type(exc).__name__}: {exc}") from exc
    return [v for v in vars(module).values() if isinstance(v, Rule) and v.module == name]


def line_in(exc: BaseException, filename: str) -> int | None:
    """The line of the deepest frame of `filename` on the exception's traceback, if any."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == filename:
            line = lineno
    return line


def _validate(module: str, r: Rule) -> None:
    if not r.id or not isinstance(r.version, int) or r.version < 1:
        raise RuleError(f"{module}: rule {r.id!r}: needs an id and a version >= 1")
    if not r.triggers:
        raise RuleError(f"{module}: rule {r.id!r}: has no trigger")
    if r.mode not in MODES:
        raise RuleError(f"{module}: rule {r.id!r}: mode {r.mode!r} is not one of {MODES}")
    known = {*CALL_TYPES, "email", "social", "timer", "stage", "lifecycle", "catalogue"}
    for t in r.triggers:
        if t.kind not in known:
            raise RuleError(
                f"{module}: rule {r.id!r}: unknown event kind {t.kind!r} "
                f"(expected one of {sorted(known)})"
            )
