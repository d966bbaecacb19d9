"""Testing kit for the Kafka runtime: real `kairos worker` processes against a real broker.

    from engine.testing.kafka import Worker, consume, produce

    w = Worker("127.0.0.1:9092", tmp_path).start()       # returns once the worker is Ready
    try:
        produce(w.bootstrap, [(w.topics["clickstream"], b"u1", segment_call_bytes)])
        actions = consume(w.bootstrap, w.topics["actions"], lambda vs: len(vs) >= 1)
    finally:
        w.stop()

Each `Worker` has its own application id, topics (`<prefix>.<default topic name>`), data
directory, metrics and health ports, so tests and benchmarks on one broker never meet; several
workers given the same `prefix` form one consumer group. The integration tests and load_tests/
drive the engine through it. Imports aiokafka: `engine.testing` itself does not.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from engine.config import Settings
from engine.testing.scenario import UNLIMITED_POLICY

__all__ = ["LINKS", "ROOT", "TOPIC_SETTINGS", "UNLIMITED_POLICY", "Worker", "consume", "free_port",
           "produce"]

# The directory holding the `engine` package (a checkout's root when run from source): worker
# processes start there, so `python -m engine.cli` imports this same engine.
ROOT = Path(__file__).resolve().parents[2]
# `Worker.topics` key -> the setting naming that topic; every worker topic is one of these.
TOPIC_SETTINGS = {
    "clickstream": "topic_clickstream", "email": "topic_email", "social": "topic_social",
    "actions": "topic_actions", "dead": "topic_dead_letters", "rules": "topic_rules",
    "outcomes": "topic_outcomes", "crm": "topic_crm", "erasure": "topic_erasure",
    "shadow": "topic_shadow_actions", "catalogue": "topic_catalogue",
}


def free_port() -> int:
    """A TCP port free on loopback right now (for a worker's metrics and health servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Marketing email needs its signed unsubscribe links: a test deployment's, on loopback.
LINKS = {"KAIROS_LINK_SECRET": "test-link-secret-0123456789",
         "KAIROS_PUBLIC_URL": "http://127.0.0.1", "KAIROS_UNSUBSCRIBE_DOMAIN": "localhost"}


class Worker:
    """A `kairos worker` subprocess with its own app id, topics and data directory.

    `env` overrides any `KAIROS_*` setting (`KAIROS_RULES_DIR=...`); the contact policy is
    `UNLIMITED_POLICY` unless given. `runtime` is `KAIROS_RUNTIME`: the batch runtime, or
    "faust". `command` replaces `kairos worker` (arguments after the interpreter), e.g. a Faust
    app of one's own that mounts Kairos. The log goes to `<data_dir>/worker-<prefix>.log`.
    """

    def __init__(self, bootstrap: str, data_dir: Path, prefix: str | None = None,
                 runtime: str = "batch", command: list[str] | None = None, **env: str):
        self.prefix = prefix or f"t{uuid.uuid4().hex[:8]}"
        defaults = Settings()
        self.topics = {key: f"{self.prefix}.{getattr(defaults, field)}"
                       for key, field in TOPIC_SETTINGS.items()}
        self.bootstrap = bootstrap
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "KAIROS_BROKER": f"kafka://{bootstrap}",
            "KAIROS_APP_ID": self.prefix,
            "KAIROS_DATA_DIR": str(data_dir),
            **{f"KAIROS_{field.upper()}": self.topics[key]
               for key, field in TOPIC_SETTINGS.items()},
            "KAIROS_PARTITIONS": "4",
            "KAIROS_METRICS_PORT": str(free_port()),
            "KAIROS_WEB_PORT": str(free_port()),
            "KAIROS_CONNECT_METRICS_PORT": "0",
            "KAIROS_POLICY": str(UNLIMITED_POLICY),
            "KAIROS_RUNTIME": runtime,
            **LINKS,
            **env,
        }
        self.command = command or ["-m", "engine.cli", "worker"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"worker-{self.prefix}.log"
        self.starts = 0
        self._log_offset = 0

    def start(self, ready_timeout: float = 90.0) -> Worker:
        """Start the process and wait until it logs Ready (its partitions restored)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n--- start {self.starts} ---\n".encode())
        log.flush()
        self._log_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [sys.executable, *self.command],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        self.wait_for_log("Ready", ready_timeout)
        return self

    def wait_for_log(self, text: str, timeout: float) -> None:
        """Until `text` appears in this start's log; raises if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.log_tail()}")
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                if text.encode() in f.read():
                    return
            time.sleep(0.2)
        raise TimeoutError(f"worker not {text!r} after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def kill9(self) -> None:
        """A crash: no shutdown, no last commit, no leaving the group."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """A clean stop (SIGTERM), killed after 30 s; a no-op when not running."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env['KAIROS_METRICS_PORT']}/metrics"


def produce(
    bootstrap: str,
    records: Iterable[tuple[str, bytes | None, bytes]],
    timestamps: Iterable[int] | None = None,
) -> None:
    """Send (topic, key, value) records and wait for the acks; `timestamps` (ms) set their
    own times."""

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        times = iter(timestamps) if timestamps is not None else itertools.repeat(None)
        try:
            futures = [await producer.send(t, value=v, key=k, timestamp_ms=next(times))
                       for t, k, v in records]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(go())


def consume(
    bootstrap: str,
    topic: str,
    until: Callable[[list[bytes]], bool],
    timeout: float = 60.0,
) -> list[bytes]:
    """Values read (committed only) from the start of `topic` until `until(values)` or the
    timeout."""

    async def go() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
            group_id=None, isolation_level="read_committed",
        )
        await consumer.start()
        values: list[bytes] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and not until(values):
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    values.extend(r.value for r in records if r.value is not None)
        finally:
            await consumer.stop()
        return values

    return asyncio.run(go())
