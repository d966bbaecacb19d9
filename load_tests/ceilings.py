"""The ceilings every figure is divided by, and the obvious alternative, on one shared backlog.

- `baseline`: a bare aiokafka consume -> produce loop (the engine's own client);
- `rdkafka`: the same loop on librdkafka through confluent-kafka (`load_tests/rdkafka.py`);
- `peer`: a Quix Streams app keeping a per-contact count in RocksDB, producing once per event.

The bench traffic is produced once per run onto one source topic; each run reads it from the
start under a fresh consumer group, so repeats measure the loop and not the fill. `cleanup`
deletes the topics at the end of the run.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from load_tests import rdkafka, stats
from load_tests.harness import ROOT, Options
from load_tests.kafka_io import create_topics, delete_topics
from load_tests.traffic import Traffic

__all__ = ["baseline", "cleanup", "peer", "rdkafka_baseline"]

_PREFIX = f"bench-pass-{uuid.uuid4().hex[:6]}"
_filled: dict[str, int] = {}  # bootstrap -> events on the shared source topic


def _source(opts: Options) -> tuple[str, str]:
    """The shared source topic (filled on first use with enough for every ceiling) and sink."""
    src, dst = f"{_PREFIX}.in", f"{_PREFIX}.out"
    if opts.bootstrap not in _filled:
        events = max(opts.passthrough_events, opts.rdkafka_events)
        asyncio.run(create_topics(opts.bootstrap, [src, dst]))
        rdkafka.fill(opts.bootstrap, src, Traffic().take(events))
        _filled[opts.bootstrap] = events
    return src, dst


def cleanup(opts: Options) -> None:
    if _filled.pop(opts.bootstrap, None) is not None:
        asyncio.run(delete_topics(opts.bootstrap, _PREFIX))


def _group(tag: str) -> str:
    return f"{_PREFIX}-{tag}-{uuid.uuid4().hex[:6]}"


def baseline(opts: Options) -> dict[str, Any]:
    """A bare aiokafka consume -> produce loop over the traffic: the engine's client's ceiling."""
    src, dst = _source(opts)
    return asyncio.run(_passthrough(opts, src, dst, _group("aiokafka"), opts.bound(60)))


def rdkafka_baseline(opts: Options) -> dict[str, Any]:
    """The same loop on librdkafka, tuned (acks=all, idempotence, flush + commit per batch)."""
    src, dst = _source(opts)
    result = rdkafka.passthrough(opts.bootstrap, src, dst, _group("rdkafka"),
                                 opts.rdkafka_events, opts.bound(60))
    buckets = result.pop("buckets")
    return {"client": "confluent-kafka", "tuning": {**rdkafka.CONSUMER_TUNING,
                                                   **rdkafka.PRODUCER_TUNING},
            "stalled_s": stats.stalled_seconds(buckets, rdkafka.BUCKET_S), **result}


async def _passthrough(opts: Options, src: str, dst: str, group: str,
                       timeout: float) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(src, bootstrap_servers=opts.bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_poll_records=2000)
    producer = AIOKafkaProducer(bootstrap_servers=opts.bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    events, moved, first, last, cpu = opts.passthrough_events, 0, 0.0, 0.0, 0.0
    timeline: list[dict[str, Any]] = []
    opened = time.perf_counter()
    tick, tick_moved = 0.0, 0
    try:
        while moved < events and time.perf_counter() - opened < timeout:
            batch = await consumer.getmany(timeout_ms=200, max_records=events - moved)
            for records in batch.values():
                if records and not first:
                    first = tick = time.perf_counter()
                    cpu = time.process_time()
                for r in records:
                    await producer.send(dst, r.value, key=r.key)
                moved += len(records)
            if batch:
                await producer.flush()
                await consumer.commit()  # offsets only after the produce is acknowledged
                last = time.perf_counter()
                if last - tick >= 1.0:
                    timeline.append({"t": round(last - first, 2),
                                     "done_eps": round((moved - tick_moved) / (last - tick))})
                    tick, tick_moved = last, moved
        cpu = time.process_time() - cpu
    finally:
        await consumer.stop()
        await producer.stop()
    seconds = last - first
    return {"client": "aiokafka", "events": moved, "seconds": round(seconds, 3),
            "throughput_eps": round(moved / seconds) if seconds > 0 else None,
            "cpu_us_per_event": round(cpu / moved * 1e6, 2) if moved else None,
            "stopped_by": "events" if moved >= events else "time", "timeline": timeline}


def peer(opts: Options) -> dict[str, Any]:
    """The same traffic through a Quix Streams app: a per-contact count in RocksDB + a produce,
    its librdkafka consumer tuned as the `rdkafka` ceiling's."""
    src, dst = _source(opts)
    timeout = opts.bound(60)
    proc = subprocess.run(
        [sys.executable, "-m", "load_tests.peer", "--bootstrap", opts.bootstrap,
         "--source", src, "--sink", dst, "--group", _group("quix"),
         "--events", str(opts.passthrough_events), "--timeout", str(timeout)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout + 60, check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"peer app failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result = json.loads(lines[-1])
    buckets = result.pop("buckets", [])
    return {"work": "quixstreams: per-contact count in RocksDB state + one produce per event",
            "stalled_s": stats.stalled_seconds(buckets, rdkafka.BUCKET_S), **result}
