"""What the console reads on the Kafka runtimes (batch and Faust): workers, changelogs, topics.

Metrics come from every worker's `/metrics` (`KAIROS_CONSOLE_METRICS`), scraped together and
summed, plus what only the console sees: the group's consumer lag and which workers answered.
Contacts come from a local copy of the table changelogs (`changelog_copy.py`); the live feed
follows the action topics from their end; the rules are the last bundle deployed on the rules
topic, or the rules directory when nothing was deployed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import aiohttp
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from engine.config import Settings
from engine.console.changelog_copy import ChangelogCopy
from engine.console.source import Labels, LiveFeed, Sample, samples_of
from engine.model import actions as action_codec
from engine.ops.explain import Lookup
from engine.runtime import rule_updates
from engine.sdk.ruleset import RuleSet

__all__ = ["KafkaSource", "summed"]

log = logging.getLogger("kairos.console")
SCRAPE_TIMEOUT = 2.0  # seconds a worker has to answer; past it, it counts as unreachable
RETRY_AFTER = 5.0  # seconds before a reader stopped by a broker fault starts over
LOOK_EVERY = 10.0  # seconds between two looks for a rules topic not created yet
FEED_READY = 5.0  # seconds `start` waits for the feed's partitions (a missing topic has none)


def summed(per_process: Iterable[Iterable[Sample]]) -> list[Sample]:
    """One sample per name and labels, the values of every process added up: counters and
    histogram buckets are additive, gauges become totals (pending timers, workers up). A
    `_timestamp_seconds` gauge (a rule's last fired) is the latest of them instead.
    `_created` samples are timestamps, not figures: left out."""
    totals: dict[tuple[str, Labels], float] = {}
    for samples in per_process:
        for s in samples:
            if s.name.endswith("_created"):
                continue
            key = s.name, s.labels
            held = totals.get(key)
            if held is None:
                totals[key] = s.value
            elif s.name.endswith("_timestamp_seconds"):
                totals[key] = max(held, s.value)
            else:
                totals[key] = held + s.value
    return [Sample(name, labels, value) for (name, labels), value in totals.items()]


def sample(name: str, value: float, **labels: str) -> Sample:
    return Sample(name, tuple(sorted(labels.items())), float(value))


class KafkaSource:
    """A `ConsoleSource` over a Kafka worker group (the app id's), started once.

    `feed_topics` maps each action topic the live feed follows to whether its actions are
    shadow ones; by default the actions topic and the shadow-actions topic. The changelog copy
    lives in `<KAIROS_DATA_DIR>/console/`: one console per data directory.
    """

    runtime = "kafka"

    def __init__(self, settings: Settings, feed_topics: dict[str, bool] | None = None) -> None:
        self.settings = settings
        self.feed = LiveFeed()
        self.urls = [u.strip() for u in settings.console_metrics.split(",") if u.strip()]
        self.feed_topics = feed_topics or {settings.topic_actions: False,
                                           settings.topic_shadow_actions: True}
        self.root = settings.data_dir / "console"
        self.copy = ChangelogCopy(settings, self.root)
        self.undecodable = 0  # feed records that were no action: counted, skipped
        self._rules = RuleSet.load(settings.rules_dir)
        self._deployed_read = False
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None  # end offsets, for the lag
        self._feed_reader: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        bootstrap = self.settings.bootstrap
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT))
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await self._admin.start()
        self._offsets = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await self._offsets.start()
        if self.settings.topic_rules in await self._admin.list_topics():
            await self._read_deployed()
        self._feed_reader = await self._open_feed()
        self._tasks = [asyncio.create_task(self._forever("changelog copy", self.copy.follow)),
                       asyncio.create_task(self._forever("live feed", self._follow_feed)),
                       asyncio.create_task(self._forever("rules", self._follow_rules))]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for client in (self._feed_reader, self._offsets):
            if client is not None:
                await client.stop()
        if self._admin is not None:
            await self._admin.close()
        if self._session is not None:
            await self._session.close()
        self.copy.close()

    # --- metrics --------------------------------------------------------------------------

    async def samples(self) -> list[Sample]:
        """The workers' samples summed, each worker's reachability, the lag, the copy's
        progress (1.0 once caught up)."""
        scraped = await asyncio.gather(*(self._scrape(url) for url in self.urls))
        answered = [s for s in scraped if s is not None]
        return [*summed(answered),
                *(sample("kairos_console_scrape_up", s is not None, url=url)
                  for url, s in zip(self.urls, scraped, strict=True)),
                *await self._lag(),
                sample("kairos_console_copy_progress", self.copy.progress())]

    async def _scrape(self, url: str) -> list[Sample] | None:
        """One worker's samples; None when it does not answer in time or answers nonsense."""
        assert self._session is not None, "start() first"
        try:
            async with self._session.get(url) as response:
                response.raise_for_status()
                text = await response.text()
            return samples_of(text_string_to_metric_families(text))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("worker metrics at %s unreadable: %r", url, exc)
            return None

    async def _lag(self) -> list[Sample]:
        """Per input partition, the records the group has not committed yet (the group's
        members read from the start of a partition it never committed on)."""
        assert self._admin is not None and self._offsets is not None, "start() first"
        try:
            existing = set(await self._admin.list_topics())
            inputs = sorted(t for t in self.settings.topics.inputs if t in existing)
            described = await self._admin.describe_topics(inputs) if inputs else []
            tps = [TopicPartition(d["topic"], p["partition"])
                   for d in described for p in d.get("partitions", ())]
            if not tps:
                return []
            committed = {tp: meta.offset for tp, meta in
                         (await self._admin.list_consumer_group_offsets(
                             self.settings.app_id, partitions=tps)).items() if meta.offset >= 0}
            ends = await self._offsets.end_offsets(tps)
            never = [tp for tp in tps if tp not in committed]
            starts = await self._offsets.beginning_offsets(never) if never else {}
        except (KafkaError, OSError) as exc:
            log.warning("consumer lag unknown: %r", exc)
            return []
        return [sample("kairos_consumer_lag", max(ends[tp] - committed.get(tp, starts.get(tp, 0)),
                                                  0),
                       topic=tp.topic, partition=str(tp.partition))
                for tp in sorted(tps)]

    # --- contacts and rules ---------------------------------------------------------------

    def lookups(self) -> tuple[Lookup, Lookup]:
        return self.copy.lookup("identity"), self.copy.lookup("contacts")

    def caught_up(self) -> bool:
        """The contact copy has read its changelogs up to where they ended when first seen:
        before, a contact not found may just not be loaded yet (`copy.progress()`)."""
        return self.copy.caught_up()

    def ruleset(self) -> RuleSet:
        return self._rules

    def _use_rules(self, rules: RuleSet) -> None:
        self._rules = rules

    async def _read_deployed(self) -> None:
        deployed = await rule_updates.latest(self.settings.bootstrap, self.settings.topic_rules)
        if deployed is not None:
            rule_updates.apply(deployed, self.root / "rules", self._use_rules)
        self._deployed_read = True

    async def _follow_rules(self) -> None:
        """Every bundle deployed (from the topic's start: none is missed between the read in
        `start` and this one); a rules topic created later, once it exists."""
        assert self._admin is not None, "start() first"
        while not self._deployed_read:
            if self.settings.topic_rules in await self._admin.list_topics():
                await self._read_deployed()
            else:
                await asyncio.sleep(LOOK_EVERY)
        await rule_updates.follow(self.settings.bootstrap, self.settings.topic_rules,
                                  self.root / "rules", self._use_rules, from_start=True)

    # --- live feed ------------------------------------------------------------------------

    async def _open_feed(self) -> AIOKafkaConsumer:
        """A reader outside any group on every feed topic, at their ends once this returns:
        what is decided from now on reaches the feed."""
        reader = AIOKafkaConsumer(*self.feed_topics, bootstrap_servers=self.settings.bootstrap,
                                  group_id=None, enable_auto_commit=False,
                                  auto_offset_reset="latest", isolation_level="read_committed")
        await reader.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FEED_READY
        while not reader.assignment() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for tp in reader.assignment():
            await reader.position(tp)
        return reader

    async def _follow_feed(self) -> None:
        assert self._feed_reader is not None, "start() first"
        while True:
            for tp, records in (await self._feed_reader.getmany(timeout_ms=1000)).items():
                shadow = self.feed_topics[tp.topic]
                for r in records:
                    try:
                        action = action_codec.decode(r.value)
                    except (msgspec.DecodeError, TypeError):  # TypeError: no value at all
                        self.undecodable += 1
                        continue
                    self.feed.publish(action, shadow)

    async def _forever(self, what: str,
                       run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """`run` until cancelled, started over after a broker fault."""
        while True:
            try:
                await run()
            except (KafkaError, OSError) as exc:
                log.warning("console %s paused (%r); retrying in %.0fs", what, exc, RETRY_AFTER)
                await asyncio.sleep(RETRY_AFTER)
