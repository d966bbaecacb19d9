"""Talking to the broker for the kit: topics, backlogs, consumer lag and the open-loop driver.

The open-loop driver sends each event at its scheduled time, whatever the system under test
does, and counts latency from that scheduled time: when the sender or the system falls behind,
the delay shows up in the latency instead of silently lowering the rate (no coordinated
omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from engine.model import actions as action_codec
from load_tests.stats import Latency, lag_growing
from load_tests.traffic import Record, sequence_of

WORKER_HISTOGRAM = "kairos_record_to_action_seconds"


async def create_topics(bootstrap: str, topics: Sequence[str], partitions: int = 4) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # producing before leaders exist only logs retries
            described = await admin.describe_topics(list(topics))
            if all(d.get("partitions") and all(p["leader"] >= 0 for p in d["partitions"])
                   for d in described):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Remove every topic named after a run's prefix: a bench leaves no data behind."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            with contextlib.suppress(KafkaError):
                await admin.delete_topics(names)
    finally:
        await admin.close()


async def records_on(bootstrap: str, topic: str) -> int:
    """How many records `topic` holds (its partitions' end offsets, summed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        described = await admin.describe_topics([topic])
        tps = [TopicPartition(topic, p["partition"])
               for d in described for p in d.get("partitions", ())]
        return sum((await consumer.end_offsets(tps)).values()) if tps else 0
    finally:
        await consumer.stop()
        await admin.close()


async def fill(bootstrap: str, topics: dict[str, str], records: Sequence[Record]) -> None:
    """A backlog: every record onto its topic (by source), acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=65536)
    await producer.start()
    try:
        for r in records:
            await producer.send(topics[r.topic], r.value, key=r.key)
        await producer.flush()
    finally:
        await producer.stop()


class LagProbe:
    """A group's consumer lag, from one admin client and one offsets client kept open."""

    def __init__(self, bootstrap: str, group: str, inputs: Sequence[str]) -> None:
        self.group, self.inputs = group, list(inputs)
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.offsets = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        self._input_tps: list[TopicPartition] = []

    async def start(self) -> None:
        await self.admin.start()
        await self.offsets.start()
        described = await self.admin.describe_topics(self.inputs)
        self._input_tps = [
            TopicPartition(d["topic"], p["partition"])
            for d in described
            for p in d.get("partitions", ())
        ]

    async def stop(self) -> None:
        await self.offsets.stop()
        await self.admin.close()

    async def lag(self) -> tuple[int, int]:
        """(lag on the input topics, lag on every topic the group consumes, internal too).

        Internal topics are found from the group's own commits, so a runtime may rename them.
        """
        committed = await self.admin.list_consumer_group_offsets(self.group)
        tps = sorted({*self._input_tps, *committed}, key=lambda tp: (tp.topic, tp.partition))
        ends = await self.offsets.end_offsets(tps)
        per = {tp: max(0, ends[tp] - (committed[tp].offset if tp in committed else 0))
               for tp in tps}
        inputs = sum(per[tp] for tp in self._input_tps)
        return inputs, sum(per.values())


@dataclass
class Phase:
    """What one stretch of open-loop load measured."""

    rate: float
    seconds: float
    sent: int = 0
    answered: int = 0
    latency: Latency = field(default_factory=Latency)
    # the same latency in two parts, split at the action record's timestamp (when the worker
    # produced it): scheduled send -> produced, and produced -> received here
    to_produced: Latency = field(default_factory=Latency)
    to_received: Latency = field(default_factory=Latency)
    lags: list[int] = field(default_factory=list)  # committed-offset lag, once a second
    in_flight: list[int] = field(default_factory=list)  # sent, not yet answered, once a second
    answers_expected: bool = True  # every event causes an action (the bench's probe rule)
    max_behind_ms: float = 0.0  # how late the sender itself got against the schedule
    sending_samples: int = 0  # lag samples taken while sending (growth is judged on those)
    first_due: float = 0.0  # perf_counter of the first scheduled send
    last_answer: float = 0.0  # perf_counter of the last first-answer received
    drained_at: float = 0.0  # perf_counter when the drain after the phase ended
    # the workers' own record -> action histogram (cumulative counts by bound), at the start of
    # the phase and at the end of its drain
    worker_before: dict[str, float] = field(default_factory=dict)
    worker_after: dict[str, float] = field(default_factory=dict)

    def throughput(self) -> float | None:
        """Events answered per second, from the first scheduled send to the last answer; without
        an answer per event, events sent per second until the drain ended."""
        if not self.answers_expected:
            span = self.drained_at - self.first_due
            return round(self.sent / span) if self.drained_at and span > 0 else None
        span = self.last_answer - self.first_due
        return round(self.answered / span) if self.answered and span > 0 else None

    def lag_grew(self) -> bool:
        """Judged while sending, on the events in flight when every event is answered: that is
        the pipeline's real backlog, where committed offsets move in steps of seconds."""
        n = self.sending_samples or None
        if self.answers_expected:
            return lag_growing(self.in_flight[:n], self.rate)
        return lag_growing(self.lags[:n], self.rate, allowance_s=3.0)

    def summary(self) -> dict[str, Any]:
        return {
            "rate": self.rate, "seconds": self.seconds, "events": self.sent,
            "answered": self.answered, "throughput_eps": self.throughput(),
            "unanswered_share": round(1 - self.answered / self.sent, 4) if self.sent else 0.0,
            "latency_ms": {**self.latency.percentiles_ms(), "samples": self.latency.count},
            "latency_split_ms": {"until_produced": self.to_produced.percentiles_ms(),
                                 "produced_to_received": self.to_received.percentiles_ms()},
            "max_lag": max(self.lags, default=0), "final_lag": self.lags[-1] if self.lags else 0,
            "max_in_flight": max(self.in_flight, default=0),
            "lag_grew": self.lag_grew(),
            "sender_max_behind_ms": round(self.max_behind_ms, 1),
            "worker_record_to_action": self.worker_shares(),
        }

    def worker_shares(self) -> dict[str, float]:
        """Of the actions the workers produced during the phase, the share within each bound
        (seconds from their record's timestamp): the worker's part of the latency."""
        counts = {le: n - self.worker_before.get(le, 0.0) for le, n in self.worker_after.items()}
        total = counts.get("+Inf", 0.0)
        return {le: round(n / total, 4) for le, n in counts.items()} if total else {}


class OpenLoop:
    """Sends traffic on a schedule and times each event until its first action arrives.

    One producer, one action consumer (on `next-best-actions`) and one lag probe stay open
    across phases, so a ramp's steps share them. A timeline entry is taken every second.
    """

    def __init__(self, bootstrap: str, topics: dict[str, str], actions_topic: str,
                 group: str, pids: Callable[[], list[int]] = list,
                 answers_expected: bool = True, metrics_urls: Sequence[str] = ()) -> None:
        self.bootstrap, self.topics = bootstrap, topics
        self.metrics_urls = metrics_urls
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
        self.actions = AIOKafkaConsumer(
            actions_topic, bootstrap_servers=bootstrap, group_id=None,
            auto_offset_reset="latest", fetch_max_wait_ms=50,
        )
        self.lag = LagProbe(bootstrap, group, list(topics.values()))
        self.pids = pids
        self.answers_expected = answers_expected
        self.scheduled: dict[int, tuple[float, Phase]] = {}
        self.timeline: list[dict[str, Any]] = []
        self.window = Latency()
        self._sent = self._answered = 0
        self._t0 = self._wall = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._current: list[Phase] = []

    async def __aenter__(self) -> OpenLoop:
        await self.producer.start()
        await self.actions.start()
        await self.lag.start()
        # Wait for the action consumer's partitions and their end offsets: nothing is missed.
        deadline = time.monotonic() + 30
        while not self.actions.assignment() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for tp in self.actions.assignment():
            await self.actions.position(tp)
        self._t0 = time.perf_counter()
        self._wall = time.time() - self._t0  # perf_counter -> epoch seconds
        self._tasks = [asyncio.create_task(self._probe()), asyncio.create_task(self._sample())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.lag.stop()
        await self.actions.stop()
        await self.producer.stop()

    async def _probe(self) -> None:
        while not self._closing:
            batch = await self.actions.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    if r.value is None:
                        continue
                    seq = sequence_of(action_codec.decode(r.value).trigger_event_id)
                    hit = self.scheduled.pop(seq, None) if seq is not None else None
                    if hit is None:  # not ours, or a second action for an answered event
                        continue
                    due, phase = hit
                    phase.latency.record(now - due)
                    produced = r.timestamp / 1000 - self._wall  # ms: the split is that coarse
                    phase.to_produced.record(produced - due)
                    phase.to_received.record(now - produced)
                    phase.answered += 1
                    phase.last_answer = now
                    self.window.record(now - due)
                    self._answered += 1

    async def _sample(self) -> None:
        last_sent = last_answered = 0
        while not self._closing:
            await asyncio.sleep(1.0)
            try:
                lag_inputs, lag_total = await self.lag.lag()
            except KafkaError:  # a coordinator hiccup: skip one sample, keep going
                continue
            entry: dict[str, Any] = {
                "t": round(time.perf_counter() - self._t0, 2),
                "sent_eps": self._sent - last_sent,
                "done_eps": self._answered - last_answered,
                "lag": lag_total, "lag_inputs": lag_inputs,
                "in_flight": sum(p.sent - p.answered for p in self._current),
                **{f"{k}_ms": v for k, v in self.window.percentiles_ms().items()},
            }
            rss = [_rss_mb(pid) for pid in self.pids()]
            if rss:
                entry["worker_rss_mb"] = round(sum(rss), 1)
            self.timeline.append(entry)
            for phase in self._current:
                phase.lags.append(lag_total)
                phase.in_flight.append(phase.sent - phase.answered)
            self.window.reset()
            last_sent, last_answered = self._sent, self._answered

    async def run(self, records: Sequence[Record], rate: float) -> Phase:
        """Send `records` at `rate` events/s from now; returns once the last one is sent."""
        phase = Phase(rate, len(records) / rate, answers_expected=self.answers_expected)
        phase.worker_before = await self._worker_buckets()
        self._current = [phase]
        start = phase.first_due = time.perf_counter()
        i, n = 0, len(records)
        while i < n:
            now = time.perf_counter()
            while i < n and start + i / rate <= now:  # everything due by now goes out
                due = start + i / rate
                r = records[i]
                self.scheduled[r.seq] = (due, phase)
                await self.producer.send(self.topics[r.topic], r.value, key=r.key)
                phase.max_behind_ms = max(phase.max_behind_ms, (now - due) * 1000)
                i += 1
                self._sent += 1
            phase.sent = i
            if i < n:
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        await self.producer.flush()
        phase.sending_samples = len(phase.lags)
        return phase

    def now(self) -> float:
        """Seconds on the timeline's clock."""
        return time.perf_counter() - self._t0

    async def drain(self, phase: Phase, seconds: float, settle_lag: int = 0) -> float:
        """Wait up to `seconds` for every event of the phase to be answered, or for the lag to
        settle and the last actions to arrive (some events cause no action); returns how long
        it took. Lag samples keep going to the phase meanwhile."""
        started = time.perf_counter()
        settled_at = None
        while (waited := time.perf_counter() - started) < seconds:
            if phase.answered >= phase.sent:
                break
            # only a lag sample taken after the last send says anything about this phase
            fresh = bool(self.timeline) and self.timeline[-1]["t"] > started - self._t0
            if fresh and self.timeline[-1]["lag"] <= settle_lag:
                settled_at = settled_at if settled_at is not None else waited
                if waited - settled_at >= 1.0:  # committed means decided: allow the produce
                    break
            else:
                settled_at = None
            await asyncio.sleep(0.1)
        self._current = []
        phase.drained_at = time.perf_counter()
        phase.worker_after = await self._worker_buckets()
        return phase.drained_at - started

    async def _worker_buckets(self) -> dict[str, float]:
        """Scraped in a thread: the action consumer keeps timing answers meanwhile."""
        return await asyncio.to_thread(buckets, self.metrics_urls, WORKER_HISTOGRAM)


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _samples(url: str) -> Iterator[tuple[str, str, float]]:
    """A worker's `/metrics` as (name, labels, value); nothing if unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # loopback only
            text = resp.read().decode()
    except OSError:
        return
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name, _, labels = name_labels.partition("{")
        with contextlib.suppress(ValueError):
            yield name, labels, float(value)


def scrape(url: str) -> dict[str, float]:
    """A worker's `/metrics`, summed per metric name over label sets (empty if unreachable)."""
    out: dict[str, float] = {}
    for name, _, value in _samples(url):
        out[name] = out.get(name, 0.0) + float(value)
    return out


def buckets(urls: Sequence[str], histogram: str) -> dict[str, float]:
    """A histogram's cumulative bucket counts by upper bound (`le`), summed over workers."""
    out: dict[str, float] = {}
    for url in urls:
        for name, labels, value in _samples(url):
            if name == f"{histogram}_bucket":
                le = labels.split('le="', 1)[1].split('"', 1)[0]
                out[le] = out.get(le, 0.0) + value
    return out
