"""The librdkafka ceiling: a confluent-kafka consume -> produce loop, tuned as its users tune it.

`acks=all` and idempotence on the producer; per batch (`consume(num_messages=...)`): produce
every record, flush, then commit the batch's offsets synchronously, so nothing is committed
before it is acknowledged. librdkafka's defaults stall such a loop: once ~100k messages are
prefetched (`queued.min.messages`, `queued.max.messages.kbytes`) its consumer backs off fetching
for `fetch.queue.backoff.ms` (1,000 ms). `CONSUMER_TUNING` raises the queue and shortens the
backoff; the Quix Streams peer gets the same settings, as it runs on librdkafka too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, Producer

from load_tests.traffic import Record

CONSUMER_TUNING: dict[str, Any] = {
    "fetch.queue.backoff.ms": 10,
    "queued.max.messages.kbytes": 1_048_576,
    "queued.min.messages": 1_000_000,
}
PRODUCER_TUNING: dict[str, Any] = {
    "acks": "all", "enable.idempotence": True, "linger.ms": 5,
    "queue.buffering.max.messages": 1_000_000,
}
BATCH = 10_000
BUCKET_S = 0.25  # the timeline's resolution: fine enough to see a one-second stall


def fill(bootstrap: str, topic: str, records: Sequence[Record]) -> None:
    """A backlog on one topic, every record acknowledged (fast: for the passthrough source)."""
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_TUNING})
    for r in records:
        while True:
            try:
                producer.produce(topic, r.value, r.key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush()


def passthrough(bootstrap: str, src: str, dst: str, group: str, events: int,
                timeout: float) -> dict[str, Any]:
    """Move `events` records from `src` to `dst`: events/s from first to last batch, CPU per
    event of this process (librdkafka's threads included), and a timeline in 0.25 s buckets."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         **CONSUMER_TUNING})
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_TUNING})
    consumer.subscribe([src])
    moved, first, last = 0, 0.0, 0.0
    buckets: list[int] = []
    opened = time.perf_counter()
    cpu_at_first = 0.0
    try:
        while moved < events and time.perf_counter() - opened < timeout:
            batch = [m for m in consumer.consume(num_messages=BATCH, timeout=0.2)
                     if m.error() is None]
            if not batch:
                continue
            if not first:
                first, cpu_at_first = time.perf_counter(), time.process_time()
            for m in batch:
                producer.produce(dst, m.value(), m.key())
            producer.flush()
            consumer.commit(asynchronous=False)
            moved += len(batch)
            last = time.perf_counter()
            slot = int((last - first) / BUCKET_S)
            buckets += [0] * (slot + 1 - len(buckets))
            buckets[slot] += len(batch)
    finally:
        consumer.close()
    cpu = time.process_time() - cpu_at_first
    seconds = last - first
    return {"events": moved, "seconds": round(seconds, 3),
            "throughput_eps": round(moved / seconds) if seconds > 0 else None,
            "cpu_us_per_event": round(cpu / moved * 1e6, 2) if moved else None,
            "stopped_by": "events" if moved >= events else "time", "buckets": buckets,
            "timeline": [{"t": round((i + 1) * BUCKET_S, 2), "done_eps": round(n / BUCKET_S)}
                         for i, n in enumerate(buckets)]}
