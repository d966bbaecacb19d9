"""Changing rules without restarting: a watched directory (embedded) or a rules topic (Kafka).

A rules directory (modules, data files, `disabled.txt`, `modes.txt`, message templates under
`templates/`) travels as one *bundle*:
every file's bytes in one msgpack message on the compacted `kairos-rules` topic, under one key,
so the last bundle is the rule set. Each worker follows the topic, writes the bundle to a
directory of its own and swaps the pipeline's rule set; a bundle that fails to load is logged
and ignored, and the worker keeps deciding with the rules it had.

Loading a bundle runs its Python code: only operators should be able to write to the topic
(Kafka ACLs), exactly as only they can write to the rules directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import RuleError
from engine.sdk.ruleset import RuleSet
from engine.sdk.template_layout import SUFFIXES as TEMPLATE_SUFFIXES
from engine.sdk.template_layout import TEMPLATES_DIR

log = logging.getLogger("kairos.rules")

BUNDLE_KEY = b"rules"
BUNDLED_SUFFIXES = {".py", ".yaml", ".yml", ".toml", ".csv", ".json", ".txt", *TEMPLATE_SUFFIXES}


class Bundle(msgspec.Struct, frozen=True):
    files: dict[str, bytes]
    created_at: float

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + self.files[name] + b"\0")
        return h.hexdigest()[:16]


def make_bundle(directory: Path, templates: Path | None = None) -> Bundle:
    """Every rule module, data file and template under `directory`, checked by loading it
    first; `templates` (a directory elsewhere) travels as the bundle's `templates/`."""
    RuleSet.load(directory)  # refuse to ship what does not load
    files = _files(directory)
    if templates is not None and templates.resolve() != (directory / TEMPLATES_DIR).resolve():
        files = {k: v for k, v in files.items() if Path(k).parts[0] != TEMPLATES_DIR}
        files.update({f"{TEMPLATES_DIR}/{k}": v for k, v in _files(templates).items()})
    return Bundle(files=files, created_at=time.time())


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.suffix in BUNDLED_SUFFIXES and "__pycache__" not in p.parts
    }


def encode(bundle: Bundle) -> bytes:
    return msgspec.msgpack.encode(bundle)


def decode(raw: bytes) -> Bundle:
    return msgspec.msgpack.decode(raw, type=Bundle)


def materialize(bundle: Bundle, root: Path) -> Path:
    """Write the bundle to `root/<digest>/` (once) and return that directory."""
    target = root / bundle.digest
    if not target.exists():
        staging = root / f".{bundle.digest}.tmp"
        for name, data in bundle.files.items():
            path = staging / name
            if ".." in Path(name).parts:
                raise RuleError(f"bundle file {name!r} escapes the rules directory")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        staging.rename(target)
    return target


def fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    return tuple(
        (str(p), p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.suffix in BUNDLED_SUFFIXES and "__pycache__" not in p.parts
    )


class DirectoryWatcher:
    """Polls a rules directory; on a change that loads, hands the new rule set over.

    Polled by time, not by traffic: a runtime calls `poll_if_due` whenever it wakes (a line
    read, an idle timeout, a timer tick), so an edit applies within `interval` seconds (and a
    wake-up) even when no event arrives."""

    def __init__(self, directory: Path, on_change: Callable[[RuleSet], None],
                 interval: float = 1.0) -> None:
        self.directory = directory
        self.on_change = on_change
        self.interval = interval
        self._seen = fingerprint(directory)
        self._polled = time.monotonic()

    def poll_if_due(self) -> bool:
        """`poll`, when `interval` seconds passed since the last look."""
        if time.monotonic() - self._polled < self.interval:
            return False
        self._polled = time.monotonic()
        return self.poll()

    def poll(self) -> bool:
        now = fingerprint(self.directory)
        if now == self._seen:
            return False
        self._seen = now
        try:
            rules = RuleSet.load(self.directory)
        except RuleError as exc:
            log.error("rules in %s not reloaded, keeping the current set: %s", self.directory, exc)
            return False
        log.info("rules reloaded from %s: %s", self.directory, rules.describe())
        self.on_change(rules)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.poll()


# --- the rules topic (Kafka runtime) -----------------------------------------------------------


def rules_topic(topic: str, replication: int) -> Any:
    """One partition (a total order of rule changes), compacted (only the last bundle counts):
    an aiokafka `NewTopic`."""
    from aiokafka.admin import NewTopic

    return NewTopic(topic, 1, replication, topic_configs={"cleanup.policy": "compact"})


async def ensure_rules_topic(bootstrap: str, topic: str, replication: int,
                             timeout: float) -> None:
    """The rules topic, created (and led) if missing, for a deploy before any worker ran."""
    from engine.runtime.kafka.admin import create_missing

    await create_missing(bootstrap, [rules_topic(topic, replication)], timeout)


async def publish(bootstrap: str, topic: str, bundle: Bundle) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, encode(bundle), key=BUNDLE_KEY)
    finally:
        await producer.stop()


async def latest(bootstrap: str, topic: str) -> Bundle | None:
    """The last bundle on the rules topic, read to its end; None when nothing was deployed."""
    found: Bundle | None = None
    async for bundle in _bundles(bootstrap, topic, from_start=True, forever=False):
        found = bundle
    return found


async def follow(
    bootstrap: str, topic: str, root: Path, on_change: Callable[[RuleSet], None],
    from_start: bool = False,
) -> None:
    """Apply every bundle published after start-up, for as long as the worker runs;
    `from_start`: every bundle still on the topic first, so none published meanwhile is missed."""
    async for bundle in _bundles(bootstrap, topic, from_start=from_start, forever=True):
        apply(bundle, root, on_change)


async def _bundles(
    bootstrap: str, topic: str, *, from_start: bool, forever: bool
) -> AsyncIterator[Bundle]:
    """Bundles on the rules topic: from its start to its end, or from now on, forever."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    # The reset policy must agree with the seek: aiokafka resets a freshly assigned partition
    # on its own, and that reset can land after our seek and win.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest" if from_start else "latest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await (consumer.seek_to_beginning(tp) if from_start else consumer.seek_to_end(tp))
        end = (await consumer.end_offsets([tp]))[tp]
        while forever or await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                for r in records:
                    if r.key == BUNDLE_KEY and r.value:
                        yield decode(r.value)
    finally:
        await consumer.stop()


def apply(bundle: Bundle, root: Path, on_change: Callable[[RuleSet], None]) -> bool:
    """Load a bundle and hand it over; one that fails to load leaves the current rules in place."""
    try:
        rules = RuleSet.load(materialize(bundle, root))
    except (RuleError, OSError) as exc:
        log.error("rules bundle %s rejected, keeping the current rules: %s", bundle.digest, exc)
        return False
    log.info("rules bundle %s applied: %s", bundle.digest, rules.describe())
    on_change(rules)
    return True
