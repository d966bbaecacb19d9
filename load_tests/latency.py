"""Scenarios under an offered rate, open loop: `steady`, `soak`, `ramp` (the highest rate
whose p99 stays under target) and `spike`; each measures event -> action latency and lag."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from engine.testing.kafka import Worker
from load_tests import stats
from load_tests.harness import (
    Options,
    inputs,
    worker_counters,
    workers,
)
from load_tests.kafka_io import (
    OpenLoop,
    Phase,
)
from load_tests.traffic import Traffic


async def _open_loop(opts: Options, ws: list[Worker], body: Any) -> dict[str, Any]:
    w = ws[0]
    pids = lambda: [x.proc.pid for x in ws if x.proc is not None]  # noqa: E731
    async with OpenLoop(opts.bootstrap, inputs(w), w.topics["actions"], w.prefix, pids,
                        answers_expected=opts.probe_rule,
                        metrics_urls=[x.metrics_url() for x in ws]) as loop:
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
        "latency_ms": s["latency_ms"], "latency_split_ms": s["latency_split_ms"],
        "unanswered_share": s["unanswered_share"],
        "latency_is_lower_bound": phase.answers_expected and s["unanswered_share"] > 0.01,
        "lag": {"max": s["max_lag"], "final": s["final_lag"], "grew": s["lag_grew"],
                "max_in_flight": s["max_in_flight"]},
        "sender_max_behind_ms": s["sender_max_behind_ms"],
        "worker_record_to_action": s["worker_record_to_action"],
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
