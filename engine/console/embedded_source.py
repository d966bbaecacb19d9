"""The console's source in the embedded runtime: the engine's own process, read directly."""

from __future__ import annotations

from engine.console.source import LiveFeed, Sample, samples_of
from engine.model import state as state_codec
from engine.ops.explain import Lookup
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet

__all__ = ["EmbeddedSource"]


class EmbeddedSource:
    """Metrics from the pipeline's registry, contacts through the runtime's state cache (so a
    decision not yet flushed to RocksDB is already on the page), actions from `feed`, which
    the runtime's action callback publishes to."""

    runtime = "embedded"

    def __init__(self, engine: EmbeddedRuntime, feed: LiveFeed) -> None:
        self.engine = engine
        self.feed = feed

    async def start(self) -> None:
        """Nothing to open: the engine runs in this process."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def samples(self) -> list[Sample]:
        return samples_of(self.engine.pipeline.metrics.registry.collect())

    def ruleset(self) -> RuleSet:
        return self.engine.pipeline.rules

    def lookups(self) -> tuple[Lookup, Lookup]:
        def contact(key: str) -> bytes | None:
            st = self.engine.states.load(key)
            return None if st is None else state_codec.encode(st)

        return self.engine.identity.get, contact
