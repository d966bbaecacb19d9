"""The SRE kit: how many events per second, at what latency, with how many workers.

    python -m load_tests.bench [--bootstrap 127.0.0.1:9092] [scenario ...]

Scenarios (all bounded in events and seconds, loopback only, stopping by themselves):

- `embedded`: the load's events through the embedded runtime in one process (events/s);
- `baseline`: a bare aiokafka consume -> produce passthrough of the same load on the same
  broker: the Python-on-Kafka ceiling every other figure is divided by;
- `backlog`: one `kairos worker` draining a backlog of the load (its maximum events/s);
- `steady`: an open-loop producer at a fixed rate (each event sent at its scheduled time,
  whatever the engine does, so latency has no coordinated omission) against a running worker;
  event -> action latency from the scheduled send time to the action's arrival on
  `next-best-actions`, in an HDR histogram; consumer lag sampled every second.

Each writes `load_tests/results/<scenario>.json` (and a PNG for `steady`); `summary.md` gathers
them with the passthrough ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from hdrh.histogram import HdrHistogram

from engine import actions as action_codec
from engine.pipeline import Pipeline
from engine.ruleset import RuleSet
from engine.runtime.embedded import EmbeddedRuntime
from load_tests.traffic import Record, Traffic, sequence_of
from tests.integration.kafka_helpers import UNLIMITED_POLICY, Worker

RESULTS = Path(__file__).parent / "results"
SOURCES = ("clickstream", "email", "social")


def machine() -> dict[str, Any]:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=False).stdout.strip()
    return {"cpus": os.cpu_count(), "arch": platform.machine(),
            "python": platform.python_version(), "git_revision": rev}


def write(name: str, result: dict[str, Any]) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    result = {"scenario": name, **result, **machine()}
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return result


def load(n: int) -> list[Record]:
    return list(itertools.islice(Traffic(), n))


# --- embedded --------------------------------------------------------------------------------


def embedded(events: int) -> dict[str, Any]:
    from engine.policy import Policy

    records = load(events)
    runtime = EmbeddedRuntime(Pipeline(RuleSet.load(), Policy.load(UNLIMITED_POLICY)))
    started = time.perf_counter()
    for r in records:
        runtime.submit(r.value, r.topic)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    actions = sum(runtime.pipeline.metrics.actions.values())
    return write("embedded", {"events": events, "seconds": round(seconds, 2),
                              "throughput_eps": round(events / seconds), "actions": actions})


# --- Kafka helpers ---------------------------------------------------------------------------


async def create(bootstrap: str, topics: list[str], partitions: int = 4) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    finally:
        await admin.close()


async def fill(bootstrap: str, topics: dict[str, str], records: list[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for r in records:
            await producer.send(topics[r.topic], r.value, key=r.key)
        await producer.flush()
    finally:
        await producer.stop()


async def lag(bootstrap: str, group: str, topics: list[str]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        tps = [TopicPartition(d["topic"], p["partition"])
               for d in await admin.describe_topics(topics) for p in d.get("partitions", ())]
        ends = await consumer.end_offsets(tps)
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)
    finally:
        await consumer.stop()
        await admin.close()


# --- baseline --------------------------------------------------------------------------------


def baseline(bootstrap: str, events: int) -> dict[str, Any]:
    """A bare consume -> produce loop: what Python on Kafka moves on this machine."""
    tag = f"base{int(time.time())}"
    src, dst = f"{tag}.in", f"{tag}.out"

    async def go() -> float:
        await create(bootstrap, [src, dst])
        await fill(bootstrap, {s: src for s in SOURCES}, load(events))
        consumer = AIOKafkaConsumer(src, bootstrap_servers=bootstrap, group_id=tag,
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    max_poll_records=2000)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await consumer.start()
        await producer.start()
        moved, started = 0, time.perf_counter()
        try:
            while moved < events and time.perf_counter() - started < 120:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for r in records:
                        await producer.send(dst, r.value, key=r.key)
                    moved += len(records)
                await producer.flush()
                await consumer.commit()
            return time.perf_counter() - started
        finally:
            await consumer.stop()
            await producer.stop()

    seconds = asyncio.run(go())
    return write("baseline", {"events": events, "seconds": round(seconds, 2),
                              "throughput_eps": round(events / seconds)})


# --- worker scenarios ------------------------------------------------------------------------


def backlog(bootstrap: str, events: int, timeout: float = 240) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        w = Worker(bootstrap, Path(tmp), KAIROS_METRICS_PORT="0")
        topics = {s: w.topics[s] for s in SOURCES}
        asyncio.run(create(bootstrap, list(topics.values())))
        asyncio.run(fill(bootstrap, topics, load(events)))
        w.start()
        started, remaining = time.monotonic(), events
        watched = [*topics.values(), f"{w.prefix}-identity", f"{w.prefix}-contacts"]
        while time.monotonic() - started < timeout:
            remaining = asyncio.run(lag(bootstrap, w.prefix, watched))
            if remaining == 0:
                break
            time.sleep(0.5)
        seconds = time.monotonic() - started
        w.stop()
    return write("backlog", {"events": events, "seconds": round(seconds, 2),
                             "throughput_eps": round(events / seconds), "remaining_lag": remaining})


def steady(bootstrap: str, rate: float, seconds: float) -> dict[str, Any]:
    """Open loop at `rate` events/s for `seconds`; latency from schedule to action."""
    records = load(int(rate * seconds))
    with tempfile.TemporaryDirectory() as tmp:
        w = Worker(bootstrap, Path(tmp), KAIROS_METRICS_PORT="0")
        topics = {s: w.topics[s] for s in SOURCES}
        asyncio.run(create(bootstrap, [*topics.values(), w.topics["actions"]]))
        w.start()
        result = asyncio.run(_steady(bootstrap, w, topics, records, rate, seconds))
        w.stop()
    out = write("steady", {"rate": rate, **result["summary"]})
    plot(result["timeline"], f"steady at {rate:g} events/s", RESULTS / "steady.png")
    return out


async def _steady(bootstrap: str, w: Worker, topics: dict[str, str], records: list[Record],
                  rate: float, seconds: float) -> dict[str, Any]:
    scheduled: dict[int, float] = {}
    hist = HdrHistogram(1, 600_000_000, 3)  # microseconds, up to 10 minutes
    timeline: list[dict[str, float]] = []
    window = HdrHistogram(1, 600_000_000, 3)
    consumer = AIOKafkaConsumer(w.topics["actions"], bootstrap_servers=bootstrap,
                                auto_offset_reset="latest", group_id=None)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await consumer.start()
    await producer.start()
    done = asyncio.Event()
    actions = 0

    async def probe() -> None:
        nonlocal actions
        while not done.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for recs in batch.values():
                for r in recs:
                    seq = sequence_of(action_codec.decode(r.value).trigger_event_id)
                    if seq is not None and seq in scheduled:
                        micros = max(1, int((now - scheduled[seq]) * 1e6))
                        hist.record_value(micros)
                        window.record_value(micros)
                        actions += 1

    async def sample(t0: float) -> None:
        sent_before = 0
        while not done.is_set():
            await asyncio.sleep(1.0)
            sent = len(scheduled)
            timeline.append({
                "t": time.time() - t0, "sent_per_s": sent - sent_before,
                "p50_ms": window.get_value_at_percentile(50) / 1000,
                "p99_ms": window.get_value_at_percentile(99) / 1000,
                "lag": await lag(bootstrap, w.prefix, list(topics.values())),
            })
            window.reset()
            sent_before = sent

    probing = asyncio.create_task(probe())
    await asyncio.sleep(2)  # the probe is assigned before the first event is due
    t0 = time.time()
    sampling = asyncio.create_task(sample(t0))
    for i, r in enumerate(records):
        due = t0 + i / rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        scheduled[r.seq] = due  # latency counts from when it *should* have gone out
        await producer.send(topics[r.topic], r.value, key=r.key)
    await producer.flush()
    drain_until = time.time() + 20
    while time.time() < drain_until:  # let the backlog, if any, come through
        await asyncio.sleep(1)
        if timeline and timeline[-1]["lag"] == 0:
            break
    done.set()
    await asyncio.gather(probing, sampling)
    await consumer.stop()
    await producer.stop()
    elapsed = time.time() - t0
    pct = {f"p{p:g}_ms".replace(".", "_"): round(hist.get_value_at_percentile(p) / 1000, 2)
           for p in (50, 90, 99, 99.9)}
    return {"timeline": timeline, "summary": {
        "events": len(records), "seconds": round(elapsed, 2),
        "throughput_eps": round(len(records) / max(elapsed, 1e-9)), "actions_measured": actions,
        **pct, "max_ms": round(hist.get_max_value() / 1000, 2),
        "max_lag": max((s["lag"] for s in timeline), default=0),
        "final_lag": timeline[-1]["lag"] if timeline else None,
    }}


def plot(timeline: list[dict[str, float]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    t = [s["t"] for s in timeline]
    a.plot(t, [s["p50_ms"] for s in timeline], label="p50")
    a.plot(t, [s["p99_ms"] for s in timeline], label="p99")
    a.set_ylabel("event -> action (ms)")
    a.legend()
    a.set_title(title)
    b.plot(t, [s["sent_per_s"] for s in timeline], label="events/s sent")
    b.plot(t, [s["lag"] for s in timeline], label="consumer lag")
    b.set_xlabel("seconds")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def summary(results: list[dict[str, Any]]) -> None:
    by = {r["scenario"]: r for r in results}
    ceiling = by.get("baseline", {}).get("throughput_eps")
    lines = ["| scenario | events | events/s | vs passthrough | p50 ms | p99 ms | p99.9 ms | max lag |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        ratio = f"{r['throughput_eps'] / ceiling:.1%}" if ceiling else "n/a"
        lines.append(f"| {r['scenario']} | {r['events']} | {r['throughput_eps']} | {ratio} | "
                     f"{r.get('p50_ms', '')} | {r.get('p99_ms', '')} | {r.get('p99_9_ms', '')} | "
                     f"{r.get('max_lag', '')} |")
    text = "\n".join(lines) + "\n"
    (RESULTS / "summary.md").write_text(text)
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenarios", nargs="*", default=["embedded", "baseline", "backlog", "steady"])
    ap.add_argument("--bootstrap", default=os.environ.get("KAIROS_TEST_KAFKA", "127.0.0.1:9092"))
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    results = []
    for name in args.scenarios:
        if name == "embedded":
            results.append(embedded(args.events))
        elif name == "baseline":
            results.append(baseline(args.bootstrap, args.events))
        elif name == "backlog":
            results.append(backlog(args.bootstrap, args.events))
        elif name == "steady":
            results.append(steady(args.bootstrap, args.rate, args.seconds))
        else:
            ap.error(f"unknown scenario {name!r}")
    summary(results)


if __name__ == "__main__":
    main()
