"""Every topic name Kairos reads or writes, built in one place.

Input and output topics are settings (`KAIROS_TOPIC_*`); the pipeline's internal topics and
the tables' changelogs derive from the application id, so every worker of one group, the CLI
and the tests agree on them. Changelog names keep the `<app>-<table>-changelog` form Faust uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.model.events import Source

__all__ = ["DEFAULT_INPUTS", "TABLES", "Table", "Topics", "changelog", "internal"]

Table = Literal["identity", "contacts", "items"]
TABLES: tuple[Table, ...] = ("identity", "contacts", "items")

DEFAULT_INPUTS: dict[Source, str] = {
    "clickstream": "clickstream",
    "email": "email-events",
    "social": "social-interactions",
    "outcome": "kairos-outcomes",
    "catalogue": "kairos-catalogue",
}


def internal(app_id: str, table: Table) -> str:
    """The topic that carries messages to a keyed step (keyed like its table)."""
    return f"{app_id}-{table}"


def changelog(app_id: str, table: Table) -> str:
    """The compacted topic a table's writes are logged to."""
    return f"{app_id}-{table}-changelog"


@dataclass(frozen=True)
class Topics:
    """The topics of one application: what a worker subscribes to, creates and writes."""

    app_id: str
    sources: dict[Source, str]  # source shape -> the topic it arrives on
    actions: str
    dead_letters: str
    rules: str
    erasure: str
    crm: str
    shadow_actions: str  # what rules in shadow mode would have done (never delivered)

    @property
    def inputs(self) -> dict[str, Source]:
        """Topic -> the source shape its records have."""
        return {topic: source for source, topic in self.sources.items()}

    @property
    def outcomes(self) -> str:
        return self.sources["outcome"]

    @property
    def internal(self) -> dict[Table, str]:
        return {t: internal(self.app_id, t) for t in TABLES}

    @property
    def changelogs(self) -> dict[Table, str]:
        return {t: changelog(self.app_id, t) for t in TABLES}

    def table_of(self, topic: str) -> Table:
        """The table whose internal topic `topic` is."""
        for t in TABLES:
            if topic == internal(self.app_id, t):
                return t
        raise KeyError(topic)

    def created(self) -> tuple[list[str], list[str]]:
        """(plain topics, compacted topics) a worker group needs; the rules topic apart."""
        plain = [*self.sources.values(), self.actions, self.dead_letters, self.erasure,
                 *self.internal.values(), self.shadow_actions]
        return plain, list(self.changelogs.values())
