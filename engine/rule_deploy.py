"""Changing rules without restarting: a watched directory (embedded) or a rules topic (Kafka).

A rules directory (modules, data files, `disabled.txt`) travels as one *bundle*: every file's
bytes in one msgpack message on the compacted `kairos-rules` topic, under one key, so the last
bundle is the rule set. Each worker follows the topic, writes the bundle to a directory of its
own and swaps the pipeline's rule set; a bundle that fails to load is logged and ignored, and
the worker keeps deciding with the rules it had.

Loading a bundle runs its Python code: only operators should be able to write to the topic
(Kafka ACLs), exactly as only they can write to the rules directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from engine.ruleset import RuleError, RuleSet

log = logging.getLogger("kairos.rules")

BUNDLE_KEY = b"rules"
BUNDLED_SUFFIXES = {".py", ".yaml", ".yml", ".toml", ".csv", ".json", ".txt"}


class Bundle(msgspec.Struct, frozen=True):
    files: dict[str, bytes]
    created_at: float

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + self.files[name] + b"\0")
        return h.hexdigest()[:16]


def make_bundle(directory: Path) -> Bundle:
    """Every rule module and data file under `directory`, checked by loading it first."""
    RuleSet.load(directory)  # refuse to ship what does not load
    files = {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.suffix in BUNDLED_SUFFIXES and "__pycache__" not in p.parts
    }
    return Bundle(files=files, created_at=time.time())


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
    """Polls a rules directory; on a change that loads, hands the new rule set over."""

    def __init__(self, directory: Path, on_change: Callable[[RuleSet], None]) -> None:
        self.directory = directory
        self.on_change = on_change
        self._seen = fingerprint(directory)

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

    async def run(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.poll()
