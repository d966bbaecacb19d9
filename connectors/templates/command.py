"""Running `kairos templates check|preview` (parsers in connectors/cli.py)."""

from __future__ import annotations

import argparse
import sys

from connectors.templates.check import check_rules_dir, preview_context, samples
from connectors.templates.library import Library, TemplateProblem
from engine.config import Settings
from engine.errors import RuleError
from engine.model.state import ContactState
from engine.sdk.template_layout import templates_dir


def run_templates(args: argparse.Namespace, settings: Settings) -> int:
    if args.templates == "check":
        rules_dir = args.directory or settings.rules_dir
        try:
            problems = check_rules_dir(rules_dir, settings)
        except RuleError as exc:
            problems = [str(exc)]
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"ok: templates in {templates_dir(rules_dir, settings.templates_dir)}")
        return 0
    state = _contact(args, settings)
    if state is None:
        print(f"error: no contact {args.contact!r}", file=sys.stderr)
        return 1
    directory = templates_dir(args.rules or settings.rules_dir, settings.templates_dir)
    library = Library(directory, locale=settings.templates_locale,
                      sms_max_segments=settings.sms_max_segments)
    try:
        ctx = preview_context(state, args.action, args.channel, samples(directory))
        parts = library.render_context(args.action, args.channel, ctx)
    except TemplateProblem as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, value in parts.items():
        print(f"--- {name}\n{value}")
    return 0


def _contact(args: argparse.Namespace, settings: Settings) -> ContactState | None:
    """The contact from the worker group's changelogs, or an embedded runtime's data."""
    from engine.ops import explain

    if args.kafka:
        identity, contacts = explain.from_changelogs(settings.bootstrap, settings.app_id)
        return explain.resolve(args.contact, identity, contacts)
    identity, contacts, close = explain.from_directory(
        args.data_dir or settings.data_dir / "embedded")
    try:
        return explain.resolve(args.contact, identity, contacts)
    finally:
        close()
