"""Driving a real `kairos worker` process and a real broker from tests."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[2]
UNLIMITED_POLICY = ROOT / "tests" / "policies" / "unlimited.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Worker:
    """A `kairos worker` subprocess with its own app id, topics and data directory."""

    def __init__(self, bootstrap: str, data_dir: Path, prefix: str | None = None, **env: str):
        self.prefix = prefix or f"t{uuid.uuid4().hex[:8]}"
        self.topics = {
            "clickstream": f"{self.prefix}.clickstream",
            "email": f"{self.prefix}.email-events",
            "social": f"{self.prefix}.social-interactions",
            "actions": f"{self.prefix}.next-best-actions",
            "dead": f"{self.prefix}.dead-letters",
            "rules": f"{self.prefix}.rules",
            "outcomes": f"{self.prefix}.outcomes",
            "crm": f"{self.prefix}.crm-tasks",
            "erasure": f"{self.prefix}.erasure",
        }
        self.bootstrap = bootstrap
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "KAIROS_BROKER": f"kafka://{bootstrap}",
            "KAIROS_APP_ID": self.prefix,
            "KAIROS_DATA_DIR": str(data_dir),
            "KAIROS_TOPIC_CLICKSTREAM": self.topics["clickstream"],
            "KAIROS_TOPIC_EMAIL": self.topics["email"],
            "KAIROS_TOPIC_SOCIAL": self.topics["social"],
            "KAIROS_TOPIC_ACTIONS": self.topics["actions"],
            "KAIROS_TOPIC_DEAD_LETTERS": self.topics["dead"],
            "KAIROS_TOPIC_RULES": self.topics["rules"],
            "KAIROS_TOPIC_OUTCOMES": self.topics["outcomes"],
            "KAIROS_TOPIC_CRM": self.topics["crm"],
            "KAIROS_TOPIC_ERASURE": self.topics["erasure"],
            "KAIROS_PARTITIONS": "4",
            "KAIROS_METRICS_PORT": str(free_port()),
            "KAIROS_WEB_PORT": str(free_port()),
            "KAIROS_CONNECT_METRICS_PORT": "0",
            "KAIROS_POLICY": str(UNLIMITED_POLICY),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"worker-{self.prefix}.log"
        self.starts = 0

    def start(self, ready_timeout: float = 90.0) -> Worker:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n--- start {self.starts} ---\n".encode())
        log.flush()
        self._log_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "worker"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        self.wait_for_log("Ready", ready_timeout)
        return self

    def wait_for_log(self, text: str, timeout: float) -> None:
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
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
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
    """Send and wait for the acks; `timestamps` (ms) set the records' own times."""

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
    """Values read from the start of `topic` until `until(values)` or the timeout."""

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


# Rules whose decisions depend only on the order of a contact's events, not on when a process
# happens to run them (interest scores decay with the clock): what runs compared across
# processes, kills and rebalances must decide the same, so only these run there.
ORDER_ONLY_RULES = ("first-purchase-in-category", "cart-abandoned", "affinity-third-item",
                    "email-click-related-content", "social-mention-follow-up")


def order_only_rules(into: Path) -> Path:
    """A copy of the shipped rules with every other rule disabled (`disabled.txt`)."""
    from engine.sdk.ruleset import DEFAULT_RULES_DIR, DISABLED_FILE, load_rules

    shutil.copytree(DEFAULT_RULES_DIR, into, ignore=shutil.ignore_patterns(DISABLED_FILE))
    others = sorted(r.id for r in load_rules(into) if r.id not in ORDER_ONLY_RULES)
    (into / DISABLED_FILE).write_text("\n".join(others) + "\n")
    return into
