"""`kairos templates check [DIR]` and `kairos templates preview ACTION --channel C --contact ID`.

`check` renders every template of the rules directory's templates against sample contexts: two
built-in contacts (a full profile, and none at all, in another locale) times the payloads the
rules proposed in a dry run plus `templates/samples/*.json` (`{"action": ..., "payload": {...},
"contact": {...}}`, for actions the dry run does not reach; else an empty payload). It also
fails a rule whose action has no template for a channel it can choose
(engine/ops/rules_check.py), and it is what `kairos rules check` and `kairos rules deploy` run
on the templates too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.templates.library import Library, TemplateProblem, context_of
from engine.config import Settings
from engine.model.actions import Action
from engine.model.state import ContactState
from engine.ops.rules_check import dry_run, untemplated
from engine.sdk.ruleset import RuleSet
from engine.sdk.template_layout import CHANNEL_FILES, templates_dir

__all__ = ["SAMPLE_CONTACTS", "check", "check_rules_dir", "preview_context", "sample_action",
           "samples"]

SAMPLES_DIR = "samples"
SAMPLE_TIME, SAMPLE_EXPIRY = "2026-06-01T09:30:00Z", "2026-06-02T09:30:00Z"
SAMPLE_LINKS = {"unsubscribe": "https://example.invalid/unsubscribe/sample"}
SAMPLE_CONTACTS: tuple[dict[str, str], ...] = (
    {"id": "c-sample", "first_name": "Ada", "last_name": "Lovelace", "name": "Ada Lovelace",
     "city": "London", "country": "GB", "locale": "en-GB", "timezone": "Europe/London"},
    {"id": "c-anonymous", "locale": "fr-FR"},
)


def samples(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Action -> its sample files' contents (`templates/samples/*.json`)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((directory / SAMPLES_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise TemplateProblem(f"sample {path.name}: does not parse: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("action"), str):
            raise TemplateProblem(f"sample {path.name}: needs an \"action\" name")
        found.setdefault(data["action"], []).append(data)
    return found


def check(library: Library, payloads: dict[str, dict[str, Any]]) -> list[str]:
    """Every template rendered for every sample context: a line per problem."""
    directory = library.directory
    try:
        given = samples(directory)
    except TemplateProblem as exc:
        return [str(exc)]
    problems: list[str] = []
    actions = sorted(p.name for p in directory.iterdir()
                     if p.is_dir() and not p.name.startswith("_") and p.name != SAMPLES_DIR)
    for action in actions:
        cases = [{"payload": payloads[action]}] if action in payloads else []
        cases += given.get(action, [])
        hint = "" if cases else (f"; no sample payload (the dry run never proposed it), so it was "
                                 f"rendered with none: add {SAMPLES_DIR}/{action}.json")
        for channel, files in CHANNEL_FILES.items():
            if not any((directory / action / f).is_file() for f in files):
                continue
            for case in cases or [{"payload": {}}]:
                for contact in ([case["contact"]] if "contact" in case else SAMPLE_CONTACTS):
                    sample = sample_action(action, channel, case.get("payload", {}), contact)
                    try:
                        library.render_context(action, channel,
                                               context_of(sample, SAMPLE_LINKS))
                    except TemplateProblem as exc:
                        problems.append(f"{exc} (contact {contact.get('id', '?')}){hint}")
    return list(dict.fromkeys(problems))


def check_rules_dir(rules_dir: Path, settings: Settings, *, missing: bool = True) -> list[str]:
    """Missing templates for what the rules propose (unless `missing` is False: `rules check`
    reports those itself), then every template rendered."""
    rules = RuleSet.load(rules_dir)
    directory = templates_dir(rules_dir, settings.templates_dir)
    _, proposed = dry_run(rules)
    lacking = untemplated(rules, proposed, directory) if missing else []
    if not directory.is_dir():
        return lacking
    library = Library(directory, locale=settings.templates_locale,
                      sms_max_segments=settings.sms_max_segments)
    return lacking + check(library, proposed.payloads)


def sample_action(name: str, channel: str, payload: dict[str, Any],
                  contact: dict[str, str]) -> Action:
    """An action as the engine would decide it, for a sample contact (`id` and profile)."""
    profile = {k: v for k, v in contact.items() if k != "id"}
    return Action(action_id="a-sample", contact_id=contact.get("id", "c-sample"),
                  channel=channel, action=name, rule_id="sample", rule_version=1, score=0.0,
                  reason="sample", trigger_event_id="e-sample", event_time=SAMPLE_TIME,
                  decided_at=SAMPLE_TIME, expires_at=SAMPLE_EXPIRY, payload=payload,
                  profile=profile)


def preview_context(state: ContactState, action: str, channel: str,
                    given: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A real contact's context for `action`: the payload of its latest such action, else a
    sample's."""
    from engine.core.profile import profile

    latest = [a.payload for a in state.outbox if a.action == action]
    payload = latest[-1] if latest else given.get(action, [{}])[0].get("payload", {})
    sample = sample_action(action, channel, payload,
                           {"id": state.contact_id, **profile(state)})
    return context_of(sample, SAMPLE_LINKS)
