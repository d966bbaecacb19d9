"""Where message templates live beside the rules, and which files each channel needs.

`<rules dir>/templates/<action>/<file>` (or `KAIROS_TEMPLATES_DIR`): the engine only knows the
layout, so `kairos rules check` and `deploy` can refuse a rule whose action has no template for
a channel it can choose; rendering them is the connectors' part (connectors/templates/).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["CHANNEL_FILES", "SUFFIXES", "TEMPLATES_DIR", "missing", "templates_dir"]

TEMPLATES_DIR = "templates"
CHANNEL_FILES: dict[str, tuple[str, ...]] = {
    "email": ("email.subject", "email.html", "email.txt"),
    "sms": ("sms.txt",),
    "push": ("push.toml",),
    "web": ("web.json",),
    "crm": ("crm.toml",),
    "print": ("print.toml",),
}
SUFFIXES = frozenset(Path(f).suffix for files in CHANNEL_FILES.values() for f in files)


def templates_dir(rules_dir: Path, override: Path | None = None) -> Path:
    """The templates directory: the one set, else `templates/` beside the rules."""
    return override if override is not None else rules_dir / TEMPLATES_DIR


def missing(directory: Path, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(action, channel, the files it lacks) for each proposed pair lacking template files."""
    found = []
    for action, channel in sorted(set(pairs)):
        lacking = [f"{action}/{name}" for name in CHANNEL_FILES.get(channel, ())
                   if not (directory / action / name).is_file()]
        if lacking:
            found.append((action, channel, ", ".join(lacking)))
    return found
