"""How many events/s one `kairos worker` decides: a backlog drained from the three input topics.

Produces generated journeys onto fresh topics, then starts one worker and times it from its
first committed offset to all three input topics fully committed and the internal topics
drained. Bounded by `--events` and `--timeout`; loopback broker only. Writes JSON results.

    python -m load_tests.worker_throughput --bootstrap 127.0.0.1:9092 --events 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from engine.generator import JourneyGenerator
from tests.integration.kafka_helpers import Worker

RESULTS = Path(__file__).parent / "results"


async def produce(bootstrap: str, topics: dict[str, str], events: int) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    n = 0
    try:
        for g in JourneyGenerator(events // 8 + 1, seed=5, bad_ratio=0):
            if n >= events:
                break
            obj = msgspec.json.decode(g.value)
            key = obj.get("userId") or obj.get("anonymousId") or obj.get("email") or obj["handle"]
            await producer.send(topics[g.source], g.value, key=key.encode())
            n += 1
        await producer.flush()
    finally:
        await producer.stop()
    return n


async def lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """Messages on `topics` not yet committed by `group`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        described = await admin.describe_topics(topics)
        tps = [
            TopicPartition(d["topic"], p["partition"])
            for d in described
            for p in d.get("partitions", ())
        ]
        ends = await consumer.end_offsets(tps)
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)
    finally:
        await consumer.stop()
        await admin.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        w = Worker(args.bootstrap, Path(tmp))
        produced = asyncio.run(
            produce(args.bootstrap, {k: w.topics[k] for k in ("clickstream", "email", "social")},
                    args.events)
        )
        internal = [f"{w.prefix}-identity", f"{w.prefix}-contacts"]
        inputs = [w.topics[k] for k in ("clickstream", "email", "social")]
        started = time.monotonic()
        w.start()
        ready = time.monotonic()
        deadline = started + args.timeout
        remaining = produced
        while time.monotonic() < deadline:
            remaining = asyncio.run(lag(args.bootstrap, w.prefix, inputs + internal))
            if remaining == 0:
                break
            time.sleep(0.5)
        done = time.monotonic()
        w.stop()
    result = {
        "scenario": "worker_backlog",
        "events": produced,
        "seconds": round(done - ready, 2),
        "throughput_eps": round(produced / (done - ready), 1),
        "remaining_lag": remaining,
        "machine": {"cpus": os.cpu_count(), "arch": platform.machine(),
                    "python": platform.python_version()},
        "git_revision": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True).stdout.strip(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "worker_backlog.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
