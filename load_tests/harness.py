"""What every scenario stands on: the options, the rules under test, workers on fresh topics
(`bench-<scenario>-<id>.*`, deleted again afterwards) and the drain of a backlog."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.sdk.ruleset import DEFAULT_RULES_DIR
from engine.testing.kafka import UNLIMITED_POLICY, Worker
from load_tests.kafka_io import (
    LagProbe,
    create_topics,
    delete_topics,
    scrape,
)
from load_tests.stats import cpu_seconds

ROOT = Path(__file__).resolve().parents[1]  # load_tests/ runs from a checkout
SOURCES = ("clickstream", "email", "social")
PROBE_RULE = Path(__file__).parent / "probe_rule.py"


@dataclass
class Options:
    bootstrap: str = "127.0.0.1:9092"
    events: int = 20_000  # backlog and replay on the bench traffic
    passthrough_events: int = 100_000  # baseline and peer: fast, so more events
    rdkafka_events: int = 300_000  # past librdkafka's ~100k prefetch, where it would stall
    realistic_contacts: int = 1_000  # the realistic history: ~24 events each
    repeats: int = 3  # runs of each throughput scenario: median and spread
    rate: float = 1000.0  # steady
    seconds: float = 20.0  # steady
    drain: float = 15.0  # longest wait for a run's last answers after the last send
    warmup: float = 3.0  # seconds of load before any measured phase (not in the results)
    embedded_events: int = 30_000
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
def workers(opts: Options, name: str, n: int = 1, start: bool = True, runtime: str = "batch",
            command: list[str] | None = None) -> Iterator[list[Worker]]:
    """`n` workers in one group on fresh topics; stopped and their topics deleted on exit.
    `runtime` and `command` as `Worker` takes them (the Faust runtime, another process)."""
    prefix = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        rules = rules_dir(Path(tmp), opts.probe_rule)
        ws = [Worker(opts.bootstrap, Path(tmp) / f"w{i}", prefix=prefix, runtime=runtime,
                     command=command, KAIROS_RULES_DIR=str(rules),
                     KAIROS_POLICY=str(UNLIMITED_POLICY))
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


def process_cpu(pid: int) -> float:
    """CPU-seconds a running process has used so far (user + system)."""
    with open(f"/proc/{pid}/stat") as f:
        return cpu_seconds(f.read(), os.sysconf("SC_CLK_TCK"))


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
