"""Rendering messages from templates: a sandboxed Jinja2 environment over the templates directory.

Layout (engine/sdk/template_layout.py): `<action>/email.subject`, `email.html`, `email.txt`,
`sms.txt`, and `push.toml`, `web.json`, `crm.toml`, `print.toml`, whose string values are each a
template. Templates see `contact` (the action's profile: first_name, city, locale...),
`action` (id, rule, channel, payload) and `links` (unsubscribe, from the callable the library
is given); `money` and `date`/`datetime` format for the contact's locale with Babel.

Undefined variables are errors (`StrictUndefined`), HTML output is autoescaped, and the sandbox
keeps a template away from Python internals. Every failure is a `TemplateProblem` naming the
template and what is wrong: a connector turns it into a permanent failure, never filler text.
"""

from __future__ import annotations

import json
import tomllib
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from connectors.delivery import Permanent
from connectors.templates.sms import segments
from engine.model.actions import Action

__all__ = ["FIELDS", "PUSH_TITLE_MAX", "Library", "Links", "TemplateProblem", "context_of"]

Links = Callable[[Action], Mapping[str, str]]
"""The links a message may carry (`unsubscribe`, ...) for one action."""
PUSH_TITLE_MAX = 65  # characters: iOS and Android cut a longer notification title
FIELDS = {  # the fields a structured template must give
    "push": ("title", "body"),
    "web": (),
    "crm": ("subject",),
    "print": ("heading", "body"),
}
FIELD_FILES = {"push": "push.toml", "web": "web.json", "crm": "crm.toml", "print": "print.toml"}


class Scope(dict[str, Any]):
    """A mapping a template reads, knowing its own name, so a missing key is reported as the
    variable the author wrote (`contact.first_name is undefined`), not as "dict object"."""

    __slots__ = ("_kairos_path",)

    def __init__(self, items: Mapping[str, Any], path: str) -> None:
        super().__init__(items)
        self._kairos_path = path  # a `_` name: the sandbox never lets a template read it


class NamedUndefined(StrictUndefined):
    """Strict undefined whose message names the whole variable, path included."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        obj = self._undefined_obj
        if isinstance(obj, Scope):
            key = self._undefined_name
            part = f".{key}" if isinstance(key, str) else f"[{key!r}]"
            return f"{obj._kairos_path}{part} is undefined"
        return str(super()._undefined_message)


def scoped(value: Any, path: str) -> Any:
    """Mappings (at any depth, in lists too) as `Scope`s named by where they are."""
    if isinstance(value, Mapping):
        return Scope({k: scoped(v, f"{path}.{k}") for k, v in value.items()}, path)
    if isinstance(value, list):
        return [scoped(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


class TemplateProblem(Exception):
    """A template that does not exist, does not parse, refers to a missing variable, or renders
    something a channel cannot send (too many SMS segments, a push title too long)."""


def context_of(action: Action, links: Mapping[str, str]) -> dict[str, Any]:
    """What a template sees of one action."""
    return {
        "contact": {"id": action.contact_id, **action.profile},
        "action": {"id": action.action_id, "name": action.action, "rule": action.rule_id,
                   "channel": action.channel, "payload": action.payload,
                   "decided_at": action.decided_at, "expires_at": action.expires_at},
        "links": dict(links),
    }


class Library:
    """The templates of one directory; `render` gives a channel's parts for an action."""

    def __init__(self, directory: Path, *, locale: str = "en_US", sms_max_segments: int = 3,
                 links: Links | None = None) -> None:
        self.directory = directory
        self.default_locale = _locale(locale, Locale.parse("en_US"))
        self.sms_max_segments = sms_max_segments
        self.links: Links = links or (lambda action: {})
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(directory), undefined=NamedUndefined,
            autoescape=lambda name: name is not None and name.endswith(".html"),
            keep_trailing_newline=False, auto_reload=True,
        )
        self.env.filters.update(money=self._money, date=self._date, datetime=self._datetime)

    def render(self, action: Action) -> dict[str, Any]:
        """The parts of `action`'s message on its channel, checked for that channel."""
        return self.render_context(action.action, action.channel,
                                   context_of(action, self.links(action)))

    def content(self, action: Action) -> dict[str, Any]:
        """`render` for a channel's send: a template problem is a permanent failure."""
        try:
            return self.render(action)
        except TemplateProblem as exc:
            raise Permanent(str(exc)) from None

    def render_context(self, name: str, channel: str, given: Mapping[str, Any]
                       ) -> dict[str, Any]:
        """The parts of action `name`'s message on `channel` for a template context."""
        ctx = {key: scoped(value, key) for key, value in given.items()}
        if channel == "email":
            parts = {part: self._file(f"{name}/email.{suffix}", ctx)
                     for part, suffix in (("subject", "subject"), ("html", "html"),
                                          ("text", "txt"))}
            subject = " ".join(parts["subject"].split())
            if not subject:
                raise TemplateProblem(f"template {name}/email.subject: renders empty")
            return {**parts, "subject": subject}
        if channel == "sms":
            text = self._file(f"{name}/sms.txt", ctx).strip()
            counted = segments(text)
            if not text or counted.parts > self.sms_max_segments:
                raise TemplateProblem(
                    f"template {name}/sms.txt: {counted.parts} SMS segments "
                    f"({counted.encoding}, {counted.units} units), the limit is "
                    f"{self.sms_max_segments}" if text else f"template {name}/sms.txt: empty")
            return {"text": text, "segments": counted.parts, "encoding": counted.encoding}
        if channel not in FIELD_FILES:
            raise TemplateProblem(f"no templates for channel {channel!r}")
        fields = self._fields(f"{name}/{FIELD_FILES[channel]}", ctx, FIELDS[channel])
        title = fields.get("title")
        if channel == "push" and isinstance(title, str) and len(title) > PUSH_TITLE_MAX:
            raise TemplateProblem(f"template {name}/push.toml: title is {len(title)} characters, "
                                  f"the limit is {PUSH_TITLE_MAX}")
        return fields

    def _file(self, path: str, ctx: Mapping[str, Any]) -> str:
        try:
            return self.env.get_template(path).render(ctx)
        except TemplateNotFound:
            raise TemplateProblem(f"no template {path} in {self.directory}") from None
        except (TemplateError, ValueError, TypeError) as exc:
            raise _problem(path, exc, self.directory) from None

    def _fields(self, path: str, ctx: Mapping[str, Any], required: tuple[str, ...]
                ) -> dict[str, Any]:
        """A TOML or JSON file whose string values are templates, each rendered."""
        file = self.directory / path
        if not file.is_file():
            raise TemplateProblem(f"no template {path} in {self.directory}")
        try:
            text = file.read_text()
            data = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise TemplateProblem(f"template {path}: does not parse: {exc}") from None
        if not isinstance(data, dict):
            raise TemplateProblem(f"template {path}: must be an object of fields")
        lacking = [f for f in required if f not in data]
        if lacking:
            raise TemplateProblem(f"template {path}: lacks the field {', '.join(lacking)}")
        return {key: self._value(f"{path}:{key}", value, ctx) for key, value in data.items()}

    def _value(self, where: str, value: Any, ctx: Mapping[str, Any]) -> Any:
        if isinstance(value, str):
            try:
                return self.env.from_string(value).render(ctx)
            except (TemplateError, ValueError, TypeError) as exc:
                raise _problem(where, exc, self.directory) from None
        if isinstance(value, list):
            return [self._value(f"{where}[{i}]", v, ctx) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self._value(f"{where}.{k}", v, ctx) for k, v in value.items()}
        return value

    # --- filters: the contact's locale, else the default ---------------------------------

    def _locale_of(self, ctx: Context) -> Locale:
        contact = ctx.get("contact")
        given = contact.get("locale") if isinstance(contact, Mapping) else None
        return _locale(given, self.default_locale) if isinstance(given, str) else \
            self.default_locale

    @pass_context
    def _money(self, ctx: Context, amount: float, currency: str = "EUR") -> str:
        return format_currency(amount, currency, locale=self._locale_of(ctx))

    @pass_context
    def _date(self, ctx: Context, value: Any, format: str = "medium") -> str:
        return format_date(_when(value), format=format, locale=self._locale_of(ctx))

    @pass_context
    def _datetime(self, ctx: Context, value: Any, format: str = "medium") -> str:
        return format_datetime(_when(value), format=format, locale=self._locale_of(ctx))


def _locale(text: str, default: Locale) -> Locale:
    """`fr-FR`, `fr_FR` or `fr` as a Babel locale; the default for anything unknown."""
    try:
        return Locale.parse(text.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return default


def _when(value: Any) -> datetime | date:
    """An ISO 8601 string, epoch seconds, or a date, as something Babel formats."""
    if isinstance(value, date):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    raise TypeError(f"not a date: {value!r}")


def _problem(where: str, exc: Exception, directory: Path) -> TemplateProblem:
    """The error with the template and line it came from: `template x/sms.txt line 2: ...`;
    when it is in a template `where` extends or includes, that one is named too."""
    root = str(directory.resolve())
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<template>":
            at = f" line {frame.lineno}"
            break
        if frame.filename.startswith(root):
            name = str(Path(frame.filename).relative_to(root))
            at = f" line {frame.lineno}" if name == where else f" ({name} line {frame.lineno})"
            break
    else:
        at = ""
    return TemplateProblem(f"template {where}{at}: {type(exc).__name__}: {exc}")
