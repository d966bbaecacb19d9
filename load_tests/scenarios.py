"""The scenarios: each runs bounded in events and seconds and returns its result as a dict.

Here the throughput ones (the embedded runtime, the passthrough baseline, the Quix Streams
peer, one worker's backlog, scale-out) and the registry `make bench` picks from; the ones under
an offered rate are in `latency.py`. Worker scenarios run real `kairos worker` processes
(`engine.testing.kafka.Worker`, set up by `harness.py`) on fresh topics.
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

from engine.testing.kafka import UNLIMITED_POLICY, Worker
from load_tests import stats
from load_tests.harness import (
    ROOT,
    SOURCES,
    Options,
    drain_backlog,
    inputs,
    worker_counters,
    workers,
)
from load_tests.kafka_io import (
    create_topics,
    delete_topics,
    fill,
)
from load_tests.latency import ramp, soak, spike, steady
from load_tests.traffic import Traffic

# --- embedded --------------------------------------------------------------------------------


def embedded(opts: Options) -> dict[str, Any]:
    """The embedded runtime with the shipped rules, in this process, in memory: events/s."""
    from engine.core.policy import Policy
    from engine.pipeline import Pipeline
    from engine.runtime.embedded import EmbeddedRuntime
    from engine.sdk.ruleset import RuleSet

    records = Traffic().take(opts.embedded_events)
    actions: list[object] = []
    runtime = EmbeddedRuntime(Pipeline(RuleSet.load(), Policy.load(UNLIMITED_POLICY)),
                              on_action=actions.append)
    bound, timeline = opts.bound(60), []
    started = last = time.perf_counter()
    done = last_done = 0
    for r in records:
        runtime.submit(r.value, r.topic)  # type: ignore[arg-type]
        done += 1
        if done % 1000 == 0:
            now = time.perf_counter()
            if now - last >= 0.25:
                timeline.append({"t": round(now - started, 3),
                                 "done_eps": round((done - last_done) / (now - last))})
                last, last_done = now, done
            if now - started > bound:
                break
    seconds = time.perf_counter() - started
    return {"events": done, "seconds": round(seconds, 3), "throughput_eps": round(done / seconds),
            "actions": len(actions), "rules": "shipped",
            "stopped_by": "events" if done == len(records) else "time", "timeline": timeline}


# --- passthrough baseline and the Quix Streams peer ------------------------------------------


def _passthrough_source(opts: Options, tag: str) -> tuple[str, str]:
    src, dst = f"{tag}.in", f"{tag}.out"
    records = Traffic().take(opts.passthrough_events)
    asyncio.run(create_topics(opts.bootstrap, [src, dst]))
    asyncio.run(fill(opts.bootstrap, {s: src for s in SOURCES}, records))
    return src, dst


def baseline(opts: Options) -> dict[str, Any]:
    """A bare aiokafka consume -> produce loop over the same traffic: the Python ceiling."""
    tag = f"bench-baseline-{uuid.uuid4().hex[:6]}"
    try:
        src, dst = _passthrough_source(opts, tag)
        result = asyncio.run(_passthrough(opts, src, dst, tag, opts.bound(60)))
    finally:
        asyncio.run(delete_topics(opts.bootstrap, tag))
    return result


async def _passthrough(opts: Options, src: str, dst: str, group: str,
                       timeout: float) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(src, bootstrap_servers=opts.bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_poll_records=2000)
    producer = AIOKafkaProducer(bootstrap_servers=opts.bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    events, moved, first, last = opts.passthrough_events, 0, 0.0, 0.0
    timeline: list[dict[str, Any]] = []
    opened = time.perf_counter()
    tick, tick_moved = 0.0, 0
    try:
        while moved < events and time.perf_counter() - opened < timeout:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                if records and not first:
                    first = tick = time.perf_counter()
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
    finally:
        await consumer.stop()
        await producer.stop()
    seconds = last - first
    return {"events": moved, "seconds": round(seconds, 3),
            "throughput_eps": round(moved / seconds) if seconds > 0 else None,
            "stopped_by": "events" if moved >= events else "time", "timeline": timeline}


def peer(opts: Options) -> dict[str, Any]:
    """The same traffic through a Quix Streams app: a per-contact count in RocksDB + a produce."""
    tag = f"bench-peer-{uuid.uuid4().hex[:6]}"
    try:
        src, dst = _passthrough_source(opts, tag)
        timeout = opts.bound(60)
        proc = subprocess.run(
            [sys.executable, "-m", "load_tests.peer", "--bootstrap", opts.bootstrap,
             "--source", src, "--sink", dst, "--group", tag,
             "--events", str(opts.passthrough_events), "--timeout", str(timeout)],
            cwd=ROOT, capture_output=True, text=True, timeout=timeout + 60, check=False,
        )
    finally:
        asyncio.run(delete_topics(opts.bootstrap, tag))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"peer app failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return {"work": "quixstreams: per-contact count in RocksDB state + one produce per event",
            **json.loads(lines[-1])}


# --- one worker ------------------------------------------------------------------------------


def backlog(opts: Options) -> dict[str, Any]:
    """One worker draining a backlog of the traffic: its maximum events/s."""
    with workers(opts, "backlog", start=False) as ws:
        w = ws[0]
        asyncio.run(fill(opts.bootstrap, inputs(w), Traffic().take(opts.events)))
        w.start()
        result = asyncio.run(drain_backlog(opts, w.prefix, list(inputs(w).values()),
                                           opts.events, opts.bound(120)))
        result["worker"] = worker_counters(ws)
    return {"probe_rule": opts.probe_rule, **result}


# --- scale -----------------------------------------------------------------------------------


def scale(opts: Options) -> dict[str, Any]:
    """The same backlog through one worker, then through two in the same group."""
    runs = {}
    for n in (1, 2):
        with workers(opts, f"scale{n}", n=n) as ws:
            w = ws[0]
            time.sleep(3 if n > 1 else 0)  # let the group settle after the second join

            async def go(w: Worker = w) -> dict[str, Any]:
                await fill(opts.bootstrap, inputs(w), Traffic().take(opts.scale_events))
                return await drain_backlog(opts, w.prefix, list(inputs(w).values()),
                                           opts.scale_events, opts.bound(90))

            started = time.perf_counter()
            r = asyncio.run(go())
            r["seconds"] = round(time.perf_counter() - started, 2)  # fill included: it is live
            r["throughput_eps"] = round(r["events_done"] / r["seconds"])
            r["worker"] = worker_counters(ws)
            runs[n] = r
    one, two = runs[1]["throughput_eps"], runs[2]["throughput_eps"]
    timeline = [{"t": a["t"], "done_eps_1": a["done_eps"]} for a in runs[1]["timeline"]]
    for i, b in enumerate(runs[2]["timeline"]):
        if i < len(timeline):
            timeline[i]["done_eps_2"] = b["done_eps"]
        else:
            timeline.append({"t": b["t"], "done_eps_2": b["done_eps"]})
    return {
        "events": opts.scale_events, "throughput_eps": two, "one_worker_eps": one,
        "two_workers_eps": two, "speedup": stats.ratio(two, one),
        "stopped_by": "events" if all(r["stopped_by"] == "events" for r in runs.values())
        else "time",
        "runs": {str(k): {k2: v for k2, v in r.items() if k2 != "timeline"}
                 for k, r in runs.items()},
        "probe_rule": opts.probe_rule, "timeline": timeline,
    }


STANDARD = ("baseline", "embedded", "peer", "backlog", "steady", "spike", "ramp", "scale")
ALL = {f.__name__: f for f in (embedded, baseline, peer, backlog, steady, ramp, spike, scale,
                               soak)}
