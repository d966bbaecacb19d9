"""Declarative rules: TOML or YAML files whose conditions are CEL expressions.

For simple rules a data team need not write Python. Each file holds `[[rule]]` tables that
compile to the same `Rule` objects as Python modules, so they are indexed, arbitrated,
replayed and deployed alike. Conditions are Common Expression Language, compiled once at load
by the `common-expression-language` package (the cel-rust interpreter): no `eval`, no parser
of our own.

    [[rule]]
    id = "vip-big-order"
    version = 1
    description = "a big order: a thank-you call"
    triggers = ["track:Order Completed"]
    when = "has(event.properties.revenue) && double(event.properties.revenue) > 500.0"
    set_stage = "post-purchase"            # optional
    mode = "shadow"                        # optional: tried, never delivered (default "live")
      [[rule.propose]]
      action = "vip-thank-you"
      channels = ["crm", "email"]
      priority = 80
      ttl_days = 2
      cooldown_days = 30
      cooldown_key = "event.properties.order_id"   # optional: a CEL expression, per (action, key)
      payload = { script = "vip" }

In `when`: `event` (event_id, kind, name, time, categories, properties, traits, url, group_id,
locale, campaign), `state` (stage, lifecycle, traits, consent, timezone, preferred_channel,
first_seen, last_seen, purchases, account, locale, campaign, first_campaign), `now`, and the
functions `count(key)`, `count_within(key, seconds)`, `first_time(key)`,
`score(domain, half_life_days)`, `purchased(product_id, within_days)`, and `last(key, field)` and
`max_within(key, field, days)` for the fields declared in `values = [["track:Product Viewed",
"price"]]` (null before any event carried one).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import RuleError
from engine.model.segment import Campaign
from engine.model.state import LIFECYCLES, STAGES, Touch
from engine.sdk.rule import DAY, Context, Mode, Proposal, Rule, Trigger

SUFFIXES = (".toml", ".yaml", ".yml")
VARIABLES = {"event", "state", "now"}
FUNCTIONS = {"count", "count_within", "first_time", "score", "purchased", "last", "max_within"}
PATHS = re.compile(r"\b(?:event|state)(?:\.[A-Za-z_]\w*)+")


class Propose(msgspec.Struct, forbid_unknown_fields=True):
    action: str
    channels: list[str]
    priority: float = 50.0
    value: float = 1.0
    ttl_days: float = 1.0
    cooldown_days: float = 0.0
    payload: dict[str, Any] = {}
    cooldown_key: str | None = None  # a CEL expression over the same variables as `when`


class RuleSpec(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    triggers: list[str]
    propose: list[Propose] = []
    version: int = 1
    description: str = ""
    when: str = "true"
    reentry_days: float = 0.0
    set_stage: str | None = None
    set_lifecycle: str | None = None
    mode: Mode = "live"
    values: list[tuple[str, str]] = []  # (event key, field) pairs for `last` and `max_within`


class RuleFile(msgspec.Struct, forbid_unknown_fields=True):
    rule: list[RuleSpec]


class DeclarativeError(RuleError):
    """A declarative rule file that cannot be compiled; names file, rule and field."""


def load_file(path: Path) -> list[Rule]:
    data = path.read_bytes()
    try:
        if path.suffix == ".toml":
            spec = msgspec.toml.decode(data, type=RuleFile)
        else:
            spec = msgspec.yaml.decode(data, type=RuleFile)
    except msgspec.ValidationError as exc:
        raise DeclarativeError(f"{path.name}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DeclarativeError(f"{path.name}: not valid {path.suffix[1:].upper()}: {exc}") from None
    return [_compile(path.name, i, s) for i, s in enumerate(spec.rule)]


def _compile(source: str, index: int, spec: RuleSpec) -> Rule:
    where = f"{source}: rule {spec.id!r} ($.rule[{index}]"
    program = _program(f"{where}.when)", spec.when)
    keys = [None if p.cooldown_key is None
            else _program(f"{where}.propose[{j}].cooldown_key)", p.cooldown_key)
            for j, p in enumerate(spec.propose)]
    for field, value, allowed in (("set_stage", spec.set_stage, STAGES),
                                  ("set_lifecycle", spec.set_lifecycle, LIFECYCLES)):
        if value is not None and value not in allowed:
            raise DeclarativeError(f"{where}.{field}): {value!r} is not one of {allowed}")
    proposals = []
    for j, p in enumerate(spec.propose):
        try:
            proposals.append(Proposal(
                action=p.action, channels=tuple(p.channels), priority=p.priority, value=p.value,
                payload=p.payload, ttl=p.ttl_days * DAY, cooldown=p.cooldown_days * DAY,
            ))
        except ValueError as exc:
            raise DeclarativeError(f"{where}.propose[{j}]): {exc}") from None
    triggers = tuple(_trigger(where, t) for t in spec.triggers)
    return Rule(
        id=spec.id, version=spec.version, description=spec.description, triggers=triggers,
        body=_body(program, proposals, keys, spec, f"$.rule[{index}].when"), module=source,
        reentry=spec.reentry_days * DAY, mode=spec.mode, values=tuple(spec.values),
    )


def _program(where: str, text: str) -> Any:
    """A CEL expression compiled, its variables and functions checked; `where` names it."""
    # Imported here, by the first declarative rule: the package pulls in a command-line toolkit
    # that costs every start-up ~0.2 s (a replay's and a worker's too) when no rule needs it.
    import cel

    try:
        program = cel.compile(text)
    except ValueError as exc:
        raise DeclarativeError(f"{where}: {exc}") from None
    refs = program.references()
    unknown_vars = set(refs["variables"]) - VARIABLES
    if unknown_vars:
        raise DeclarativeError(
            f"{where}: unknown variable(s) {sorted(unknown_vars)} (use {sorted(VARIABLES)})"
        )
    unknown_fns = {f for f in refs["functions"] if f.isidentifier()} - FUNCTIONS - CEL_BUILTINS
    if unknown_fns:
        raise DeclarativeError(f"{where}: unknown function(s) {sorted(unknown_fns)}")
    return program


def _trigger(where: str, text: str) -> Trigger:
    """`kind`, `kind:name` or `kind:name@category` (e.g. `track:Order Completed@baby`)."""
    head, _, category = text.partition("@")
    kind, _, name = head.partition(":")
    if not kind:
        raise DeclarativeError(f"{where}.triggers): empty trigger {text!r}")
    return Trigger(kind, name or None, category or None)


def _body(
    program: Any, proposals: list[Proposal], keys: list[Any], spec: RuleSpec, where: str
) -> Callable[[Context], Any]:
    import cel  # loaded already: `_compile` compiled `program` with it

    uses_state = any("state" in p.references()["variables"]
                     for p in (program, *[k for k in keys if k is not None]))

    def body(ctx: Context) -> list[Proposal]:
        env = cel.Context()
        ev = ctx.event
        views = {"event": {
            "event_id": ev.event_id, "kind": ev.kind, "name": ev.name, "time": ev.time,
            "categories": list(ev.categories), "properties": ev.properties,
            "traits": ev.traits, "url": ev.url or "", "group_id": ev.group_id or "",
            "locale": ev.locale or "", "campaign": _campaign(ev.campaign),
        }}
        env.add_variable("now", ctx.now)
        if uses_state:
            views["state"] = _state_view(ctx)
        for name, view in views.items():
            env.add_variable(name, view)
        env.add_function("count", ctx.count)
        env.add_function("count_within", ctx.count_within)
        env.add_function("first_time", ctx.first_time)
        env.add_function("score", lambda domain, days: ctx.score(domain, days * DAY))
        env.add_function("purchased", lambda pid, days: ctx.purchased(pid, days * DAY))
        env.add_function("last", ctx.last)
        env.add_function("max_within", lambda key, f, days: ctx.max_within(key, f, days * DAY))
        try:
            result = program.execute(env)
        except KeyError as exc:
            raise RuleError(f"{where}: {_missing(spec.when, views, exc)}") from None
        if not isinstance(result, bool):
            raise TypeError(f"`when` must be true or false, got {result!r}")
        if not result:
            return []
        if spec.set_stage:
            ctx.set_stage(spec.set_stage)
        if spec.set_lifecycle:
            ctx.set_lifecycle(spec.set_lifecycle)
        return [p if k is None else dataclasses.replace(p, cooldown_key=_key(k.execute(env)))
                for p, k in zip(proposals, keys, strict=True)]

    return body


def _key(value: Any) -> str:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"`cooldown_key` must give a string or an integer, got {value!r}")


def _missing(when: str, views: dict[str, Any], exc: KeyError) -> str:
    """Which field of `when` was absent, with the guard that allows for it."""
    key = exc.args[0] if exc.args else ""
    for path in PATHS.findall(when):
        head, *rest = path.split(".")
        value: Any = views.get(head)
        for i, part in enumerate(rest):
            if not isinstance(value, dict):
                break
            if part not in value:
                if part != key:
                    break
                missing = ".".join([head, *rest[:i + 1]])
                return f"{missing} is missing on this {head}: guard it with has({missing})"
            value = value[part]
    return f"field {key!r} is missing: guard it with has(...)"


def _state_view(ctx: Context) -> dict[str, Any]:
    s = ctx.state
    return {
        "stage": s.stage, "lifecycle": s.lifecycle, "traits": s.traits,
        "consent": {ch: c.granted for ch, c in s.consent.items()},
        "timezone": s.timezone or "", "preferred_channel": s.preferred_channel or "",
        "first_seen": s.first_seen, "last_seen": s.last_seen, "purchases": len(s.purchases),
        "account": {"group_id": s.account.group_id, "traits": s.account.traits, "at": s.account.at}
        if s.account else {"group_id": "", "traits": {}, "at": 0.0},
        "locale": s.locale or "", "campaign": _touch(s.campaign),
        "first_campaign": _touch(s.first_campaign),
    }


def _campaign(campaign: Campaign | None) -> dict[str, Any]:
    """The UTM fields given (absent ones are absent: `has(event.campaign.source)`)."""
    given: dict[str, Any] = msgspec.to_builtins(campaign) if campaign else {}
    return given


def _touch(touch: Touch | None) -> dict[str, Any]:
    return {**_campaign(touch.campaign), "at": touch.at} if touch else {}


# CEL's own functions and macros that may appear among a program's references.
CEL_BUILTINS = {
    "size", "has", "all", "exists", "exists_one", "map", "filter", "contains", "startsWith",
    "endsWith", "matches", "int", "uint", "double", "string", "bool", "bytes", "duration",
    "timestamp", "type", "dyn", "max", "min",
}
