"""The scenarios: each runs bounded in events and seconds and returns its result as a dict.

Worker scenarios run real `kairos worker` processes (`engine.testing.kafka.Worker`) on fresh
topics named `bench-<scenario>-<id>.*`, deleted again afterwards.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from engine.sdk.ruleset import DEFAULT_RULES_DIR
from engine.testing.kafka import UNLIMITED_POLICY, Worker
from load_tests import stats
from load_tests.kafka_io import (
    LagProbe,
    OpenLoop,
    Phase,
    create_topics,
    delete_topics,
    fill,
    scrape,
)
from load_tests.traffic import Traffic

ROOT = Path(__file__).resolve().parents[1]  # load_tests/ runs from a checkout
SOURCES = ("clickstream", "email", "social")
PROBE_RULE = Path(__file__).parent / "probe_rule.py"


@dataclass
class Options:
    bootstrap: str = "127.0.0.1:9092"
    events: int = 20_000  # backlog and embedded
    passthrough_events: int = 100_000  # baseline and peer: fast, so more events
    rate: float = 1000.0  # steady
    seconds: float = 20.0  # steady
    drain: float = 15.0  # longest wait for a run's last answers after the last send
    warmup: float = 3.0  # seconds of load before any measured phase (not in the results)
    embedded_events: int = 100_000
    ramp_rates: tuple[float, ...] = (100, 200, 400, 700, 1000, 1500, 2000, 3000, 5000)
    ramp_step: float = 10.0
    target_p99_ms: float = 50.0
    spike_rate: float = 200.0
    spike_factor: float = 5.0
    scale_events: int = 10_000
    soak_rate: float = 200.0
    soak_seconds: float = 1800.0
    probe_rule: bool = True
    scenario_timeout: float = 120.0  # no scenario's measurement runs longer than this
    deadline: float = field(default_factory=lambda: time.monotonic() + 540)

    def bound(self, want: float) -> float:
        """`want` seconds, cut to the scenario timeout and to what is left of the run."""
        return max(1.0, min(want, self.scenario_timeout, self.deadline - time.monotonic()))


# --- helpers ---------------------------------------------------------------------------------


def rules_dir(tmp: Path, probe: bool) -> Path:
    """The shipped rules, plus the latency probe rule when asked for."""
    target = tmp / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    if probe:
        shutil.copy(PROBE_RULE, target / "bench_probe.py")
    return target


@contextmanager
def workers(opts: Options, name: str, n: int = 1, start: bool = True) -> Iterator[list[Worker]]:
    """`n` workers in one group on fresh topics; stopped and their topics deleted on exit."""
    prefix = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        rules = rules_dir(Path(tmp), opts.probe_rule)
        ws = [Worker(opts.bootstrap, Path(tmp) / f"w{i}", prefix=prefix,
                     KAIROS_RULES_DIR=str(rules), KAIROS_POLICY=str(UNLIMITED_POLICY))
              for i in range(n)]
        try:
            asyncio.run(create_topics(opts.bootstrap, [ws[0].topics[s] for s in SOURCES]
                                      + [ws[0].topics["actions"]]))
            if start:
                for w in ws:
                    w.start()
            yield ws
        finally:
            for w in ws:
                w.stop()
            asyncio.run(delete_topics(opts.bootstrap, prefix))


def inputs(w: Worker) -> dict[str, str]:
    return {s: w.topics[s] for s in SOURCES}


def worker_counters(ws: list[Worker]) -> dict[str, float]:
    """The workers' own counters (summed): what they consumed, decided and dead-lettered."""
    total: dict[str, float] = {}
    for w in ws:
        for k, v in scrape(w.metrics_url()).items():
            if k in ("kairos_events_consumed_total", "kairos_actions_total",
                     "kairos_dead_letters_total", "kairos_rule_errors_total"):
                total[k] = total.get(k, 0) + v
    return total


async def drain_backlog(opts: Options, group: str, topics: list[str], events: int,
                        timeout: float) -> dict[str, Any]:
    """Poll the group's lag every half second until it is zero or `timeout` passes."""
    probe = LagProbe(opts.bootstrap, group, topics)
    await probe.start()
    timeline: list[dict[str, Any]] = []
    started = time.perf_counter()
    remaining, last_inputs, last_t = events, events, 0.0
    try:
        while (t := time.perf_counter() - started) < timeout:
            lag_inputs, remaining = await probe.lag()
            if t - last_t >= 1.0 or remaining == 0:
                timeline.append({"t": round(t, 2), "lag": remaining, "lag_inputs": lag_inputs,
                                 "done_eps": round((last_inputs - lag_inputs) / max(t - last_t,
                                                                                     1e-9))})
                last_inputs, last_t = lag_inputs, t
            if remaining == 0:
                break
            await asyncio.sleep(0.5)
    finally:
        await probe.stop()
    seconds = time.perf_counter() - started
    done = events - (timeline[-1]["lag_inputs"] if timeline else events)
    return {"events": events, "seconds": round(seconds, 2),
            "throughput_eps": round(done / seconds) if seconds > 0 else None,
            "events_done": done, "lag": {"final": remaining,
                                         "max": max((s["lag"] for s in timeline), default=0)},
            "stopped_by": "events" if remaining == 0 else "time", "timeline": timeline}


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


async def _open_loop(opts: Options, ws: list[Worker], body: Any) -> dict[str, Any]:
    w = ws[0]
    pids = lambda: [x.proc.pid for x in ws if x.proc is not None]  # noqa: E731
    async with OpenLoop(opts.bootstrap, inputs(w), w.topics["actions"], w.prefix, pids,
                        answers_expected=opts.probe_rule) as loop:
        result: dict[str, Any] = await body(loop)
        result["timeline"] = loop.timeline
    return result


async def _warm_up(loop: OpenLoop, traffic: Traffic, rate: float, opts: Options) -> None:
    """Load at `rate` for a few seconds first: connections, assignments and caches warm up."""
    if opts.warmup > 0:
        traffic.retime(time.time(), 1 / rate)
        await loop.run(traffic.take(max(1, int(rate * opts.warmup))), rate)


def _phase_result(phase: Phase, drained: bool) -> dict[str, Any]:
    s = phase.summary()
    return {
        "rate": phase.rate, "events": phase.sent, "throughput_eps": s["throughput_eps"],
        "latency_ms": s["latency_ms"], "unanswered_share": s["unanswered_share"],
        "latency_is_lower_bound": phase.answers_expected and s["unanswered_share"] > 0.01,
        "lag": {"max": s["max_lag"], "final": s["final_lag"], "grew": s["lag_grew"],
                "max_in_flight": s["max_in_flight"]},
        "sender_max_behind_ms": s["sender_max_behind_ms"],
        "stopped_by": "events" if drained else "time",
    }


def steady(opts: Options, rate: float | None = None, seconds: float | None = None,
           name: str = "steady") -> dict[str, Any]:
    """Open loop at a fixed rate against one worker; event -> action latency and lag."""
    rate = rate or opts.rate
    seconds = opts.bound(seconds or opts.seconds)
    drain = min(opts.drain, max(1.0, opts.deadline - time.monotonic() - seconds))

    async def body(loop: OpenLoop) -> dict[str, Any]:
        traffic = Traffic()
        await _warm_up(loop, traffic, rate, opts)
        traffic.retime(time.time(), 1 / rate)
        phase = await loop.run(traffic.take(int(rate * seconds)), rate)
        waited = await loop.drain(phase, drain)
        out = _phase_result(phase, waited < drain)
        out["seconds"] = round(seconds, 1)
        return out

    with workers(opts, name) as ws:
        result = asyncio.run(_open_loop(opts, ws, body))
        result["worker"] = worker_counters(ws)
    return {"probe_rule": opts.probe_rule, **result}


def soak(opts: Options) -> dict[str, Any]:
    """Opt-in: `steady` for a long time at a moderate rate (drift, memory growth)."""
    opts.scenario_timeout = max(opts.scenario_timeout, opts.soak_seconds)
    opts.deadline = max(opts.deadline, time.monotonic() + opts.soak_seconds + 120)
    return steady(opts, opts.soak_rate, opts.soak_seconds, name="soak")


def ramp(opts: Options) -> dict[str, Any]:
    """Stepwise rates on one worker until a step's p99 exceeds the target or its lag grows."""

    async def body(loop: OpenLoop) -> dict[str, Any]:
        traffic, steps, measured = Traffic(), [], []
        stopped_by = "rates"
        await _warm_up(loop, traffic, opts.ramp_rates[0], opts)
        for rate in opts.ramp_rates:
            if opts.deadline - time.monotonic() < opts.ramp_step + 5:
                stopped_by = "time"
                break
            step = await _step(loop, traffic, rate, opts)
            steps.append(step)
            measured.append(_as_step(step, opts))
            if not step["ok"]:
                stopped_by = "target"
                break
        best = stats.max_sustainable(measured, opts.target_p99_ms)
        half = None
        if best and opts.deadline - time.monotonic() > opts.ramp_step + 5:
            half = await _step(loop, traffic, best / 2, opts)
        return {
            "target_p99_ms": opts.target_p99_ms, "max_sustainable_rate": best,
            "rate": best, "events": sum(s["events"] for s in steps),
            "throughput_eps": next((s["throughput_eps"] for s in reversed(steps) if s["ok"]),
                                   None),
            "latency_ms": next((s["latency_ms"] for s in reversed(steps) if s["ok"]), None),
            "lag": {"max": max((s["lag"]["max"] for s in steps), default=0)},
            "half_rate_p99_ms": half["latency_ms"]["p99"] if half else None,
            "half_rate_step": half, "steps": steps, "stopped_by": stopped_by,
        }

    with workers(opts, "ramp") as ws:
        result = asyncio.run(_open_loop(opts, ws, body))
        result["worker"] = worker_counters(ws)
    return {"probe_rule": opts.probe_rule, **result}


async def _step(loop: OpenLoop, traffic: Traffic, rate: float, opts: Options) -> dict[str, Any]:
    traffic.retime(time.time(), 1 / rate)
    phase = await loop.run(traffic.take(max(1, int(rate * opts.ramp_step))), rate)
    drain = min(opts.drain, opts.ramp_step)
    waited = await loop.drain(phase, drain)
    out = _phase_result(phase, waited < drain)
    out["drain_s"] = round(waited, 2)
    out["ok"] = stats.step_ok(_as_step(out, opts), opts.target_p99_ms)
    return out


def _as_step(result: dict[str, Any], opts: Options) -> stats.Step:
    # without the probe rule most events cause no action: missing answers mean nothing then
    unanswered = result["unanswered_share"] if opts.probe_rule else 0.0
    return stats.Step(result["rate"], result["latency_ms"]["p99"], result["lag"]["grew"],
                      unanswered)


def spike(opts: Options) -> dict[str, Any]:
    """A base rate, a burst at `spike_factor` times it, the base again: peak lag and recovery."""
    base, burst = opts.spike_rate, opts.spike_rate * opts.spike_factor
    plan = (("before", base, 10.0), ("spike", burst, 5.0), ("after", base, 15.0))

    async def body(loop: OpenLoop) -> dict[str, Any]:
        traffic, phases = Traffic(), {}
        await _warm_up(loop, traffic, base, opts)
        spike_end = 0.0
        for label, rate, seconds in plan:
            traffic.retime(time.time(), 1 / rate)
            phases[label] = await loop.run(traffic.take(int(rate * seconds)), rate)
            if label == "spike":
                spike_end = loop.now()
        waited = await loop.drain(phases["after"], opts.drain)
        # answers for earlier phases arrive while later ones run; wait for them too
        overall = stats.Latency()
        for p in phases.values():
            overall.add(p.latency)
        sent = sum(p.sent for p in phases.values())
        answered = sum(p.answered for p in phases.values())
        normal = base * 2.0  # lag within two seconds of arrivals counts as caught up
        recovered = next((s["t"] for s in loop.timeline
                          if s["t"] > spike_end and s["lag"] <= normal), None)
        return {
            "rate": base, "spike_rate": burst, "events": sent,
            "throughput_eps": phases["spike"].throughput(),
            "latency_ms": {**overall.percentiles_ms(), "samples": overall.count},
            "unanswered_share": round(1 - answered / sent, 4) if sent else 0.0,
            "lag": {"max": max((s["lag"] for s in loop.timeline), default=0)},
            "recovery_s": round(recovered - spike_end, 1) if recovered is not None else None,
            "phases": {k: p.summary() for k, p in phases.items()},
            "stopped_by": "events" if waited < opts.drain else "time",
        }

    with workers(opts, "spike") as ws:
        result = asyncio.run(_open_loop(opts, ws, body))
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
