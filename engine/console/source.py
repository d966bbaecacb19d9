"""What the console reads, whatever the runtime runs: metric samples, rules, contacts, actions.

A runtime gives the console a `ConsoleSource`. The embedded runtime's reads its own process;
the Kafka one scrapes the workers' `/metrics`, keeps a local copy of the table changelogs and
follows the action topics. The console itself only computes and renders.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from prometheus_client import Metric

from engine.model.actions import Action
from engine.ops.explain import Lookup
from engine.sdk.ruleset import RuleSet

__all__ = ["ConsoleSource", "LiveAction", "LiveFeed", "Sample", "samples_of"]

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs: hashable, comparable


class Sample(NamedTuple):
    """One exposed series value: `kairos_actions_total{rule="…",channel="…"} 3.0`."""

    name: str
    labels: Labels
    value: float

    def label(self, name: str) -> str:
        return next((v for k, v in self.labels if k == name), "")


def samples_of(families: Iterable[Metric]) -> list[Sample]:
    """The samples of metric families: a registry's `collect()` or a parsed `/metrics` text."""
    return [Sample(s.name, tuple(sorted(s.labels.items())), float(s.value))
            for family in families for s in family.samples]


class LiveAction(NamedTuple):
    action: Action
    shadow: bool  # decided by a rule in shadow mode: recorded, never delivered


class LiveFeed:
    """The latest decided actions, for pages opened later, pushed to every open stream.

    Used from the event loop's thread only; a slow reader loses its oldest items, never
    holds the engine back.
    """

    def __init__(self, keep: int = 200, per_reader: int = 1000) -> None:
        self._recent: deque[LiveAction] = deque(maxlen=keep)
        self._readers: set[asyncio.Queue[LiveAction]] = set()
        self._per_reader = per_reader

    def publish(self, action: Action, shadow: bool = False) -> None:
        item = LiveAction(action, shadow)
        self._recent.append(item)
        for reader in self._readers:
            if reader.full():
                reader.get_nowait()
            reader.put_nowait(item)

    def recent(self) -> list[LiveAction]:
        return list(self._recent)

    def subscribe(self) -> asyncio.Queue[LiveAction]:
        reader: asyncio.Queue[LiveAction] = asyncio.Queue(self._per_reader)
        self._readers.add(reader)
        return reader

    def unsubscribe(self, reader: asyncio.Queue[LiveAction]) -> None:
        self._readers.discard(reader)


class ConsoleSource(Protocol):
    """A runtime as the console sees it."""

    runtime: str  # "embedded" or "kafka": the overview shows consumer lag for Kafka only
    feed: LiveFeed

    async def start(self) -> None:
        """Open what the source reads (consumers, scrapers); the console calls it once."""

    async def stop(self) -> None:
        """Close it again."""

    async def samples(self) -> list[Sample]:
        """Every metric sample now, summed over the processes that export it."""

    def ruleset(self) -> RuleSet:
        """The rules the engine decides with now."""

    def lookups(self) -> tuple[Lookup, Lookup]:
        """The identity and contacts tables, as `engine.ops.explain.resolve` reads them."""
