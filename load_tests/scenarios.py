"""The scenarios: each runs bounded in events and seconds and returns its result as a dict.

Here the throughput ones (the embedded runtime, `kairos replay`, one worker's backlog, each on
the bench traffic and on the realistic multi-day history, and scale-out) and the registry
`make bench` picks from; the ceilings and the Quix Streams peer are in `ceilings.py`, the ones
under an offered rate in `latency.py`. Worker scenarios run real `kairos worker` processes
(`engine.testing.kafka.Worker`, set up by `harness.py`) on fresh topics.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.ops.partition import available_cores
from engine.testing.kafka import UNLIMITED_POLICY, Worker
from load_tests import stats
from load_tests.ceilings import baseline, peer, rdkafka_baseline
from load_tests.harness import (
    ROOT,
    Options,
    drain_backlog,
    inputs,
    process_cpu,
    worker_counters,
    workers,
)
from load_tests.kafka_io import fill, records_on
from load_tests.latency import ramp, soak, spike, steady
from load_tests.traffic import Record, Traffic, realistic, write_history

# --- the two workloads -----------------------------------------------------------------------


def bench_traffic(n: int) -> list[Record]:
    return Traffic().take(n)


@functools.lru_cache(maxsize=2)
def realistic_history(contacts: int) -> list[Record]:
    """Generated once per run and size: the repeats and scenarios share it."""
    return realistic(contacts)


def _workload(realistic_run: bool, opts: Options, bench_events: int) -> tuple[str, list[Record]]:
    if realistic_run:
        return "realistic", realistic_history(opts.realistic_contacts)
    return "bench", bench_traffic(bench_events)


# --- embedded --------------------------------------------------------------------------------


def _embedded(opts: Options, realistic_run: bool) -> dict[str, Any]:
    """The embedded runtime with the shipped rules, in this process, in memory: events/s."""
    from engine.core.policy import Policy
    from engine.pipeline import Pipeline
    from engine.runtime.embedded import EmbeddedRuntime
    from engine.sdk.ruleset import RuleSet

    workload, records = _workload(realistic_run, opts, opts.embedded_events)
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
    return {"workload": workload, "events": done, "seconds": round(seconds, 3),
            "throughput_eps": round(done / seconds), "actions": len(actions),
            "action_share": round(len(actions) / done, 3) if done else None, "rules": "shipped",
            "stopped_by": "events" if done == len(records) else "time", "timeline": timeline}


def embedded(opts: Options) -> dict[str, Any]:
    """The embedded runtime on the bench traffic."""
    return _embedded(opts, False)


def embedded_realistic(opts: Options) -> dict[str, Any]:
    """The embedded runtime on the realistic multi-day history."""
    return _embedded(opts, True)


# --- kairos replay, the whole process --------------------------------------------------------


def _replay(opts: Options, realistic_run: bool) -> dict[str, Any]:
    """`kairos replay` over a history in a temp file, in a subprocess: whole-process events/s
    (wall time, start-up included), with `--jobs 1` and `--jobs <the cores available>`."""
    workload, records = _workload(realistic_run, opts, opts.events)
    jobs = [1, available_cores()]
    eps: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        history, out = Path(tmp) / "history.jsonl", Path(tmp) / "actions.jsonl"
        write_history(str(history), records)
        for n in dict.fromkeys(jobs):
            cmd = [sys.executable, "-m", "engine.cli", "replay", "--events", str(history),
                   "--out", str(out), "--dead-letters", str(Path(tmp) / "dl.jsonl"),
                   "--jobs", str(n)]
            started = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT,
                                  capture_output=True, text=True, check=False,
                                  timeout=opts.bound(120))
            seconds = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"kairos replay failed ({proc.returncode}): "
                                   f"{proc.stderr[-2000:]}")
            eps[n] = round(len(records) / seconds)
        actions = sum(1 for _ in out.open("rb"))
    result = {"workload": workload, "events": len(records), "jobs": jobs,
              "throughput_eps": eps[jobs[-1]], "actions": actions,
              "action_share": round(actions / len(records), 3),
              "policy": "the default contact policy (as `kairos replay` runs)",
              "stopped_by": "events",
              # the headline is all cores; each --jobs figure beside it
              "figures": {f"jobs_{n}_eps": v for n, v in eps.items()}}
    return result


def replay(opts: Options) -> dict[str, Any]:
    """`kairos replay` over the bench traffic."""
    return _replay(opts, False)


def replay_realistic(opts: Options) -> dict[str, Any]:
    """`kairos replay` over the realistic multi-day history."""
    return _replay(opts, True)


# --- one worker ------------------------------------------------------------------------------


def _backlog(opts: Options, realistic_run: bool) -> dict[str, Any]:
    """One worker draining a backlog: its maximum events/s."""
    workload, records = _workload(realistic_run, opts, opts.events)
    with workers(opts, f"backlog-{workload}", start=False) as ws:
        w = ws[0]
        asyncio.run(fill(opts.bootstrap, inputs(w), records))
        w.start()
        result = asyncio.run(drain_backlog(opts, w.prefix, list(inputs(w).values()),
                                           len(records), opts.bound(120)))
        result["worker"] = worker_counters(ws)
    return {"workload": workload, "probe_rule": opts.probe_rule, **result}


def backlog(opts: Options) -> dict[str, Any]:
    """One worker draining a backlog of the bench traffic."""
    return _backlog(opts, False)


def backlog_realistic(opts: Options) -> dict[str, Any]:
    """One worker draining a backlog of the realistic history (its timers due at once: the
    history is in the past of the worker's wall clock, as in any catch-up)."""
    return _backlog(opts, True)


# --- faust -----------------------------------------------------------------------------------


def _drain_with(opts: Options, name: str, records: list[Record], timeout: float,
                **how: Any) -> dict[str, Any]:
    """A backlog of `records` drained by one worker process started `how` (`workers`), and
    the actions it answered with."""
    with workers(opts, name, start=False, **how) as ws:
        w = ws[0]
        asyncio.run(fill(opts.bootstrap, inputs(w), records))
        w.start()
        result = asyncio.run(drain_backlog(opts, w.prefix, list(inputs(w).values()),
                                           len(records), timeout))
        time.sleep(0.5)  # the last batch's actions are sent after its offsets are committed
        result["actions"] = asyncio.run(records_on(opts.bootstrap, w.topics["actions"]))
        return result


def faust(opts: Options) -> dict[str, Any]:
    """The Faust runtime draining the first half of the backlog the `backlog` scenario drains,
    and as its baseline the first version on Faust (load_tests/naive_faust: the three keyed
    steps as three per-message agents, every hop through its topic) draining an eighth of it.
    Both are slow, and their rates hold steady over backlogs that size: the smaller backlogs
    keep `make bench` within its ten minutes."""
    records = bench_traffic(opts.events // 2)
    runtime = _drain_with(opts, "faust", records, opts.bound(120), runtime="faust")
    naive = _drain_with(opts, "faust-naive", records[: max(len(records) // 4, 1)],
                        opts.bound(60),
                        command=["-m", "load_tests.naive_faust", "worker", "-l", "info"])
    return {"workload": "bench", "probe_rule": opts.probe_rule,
            **{k: v for k, v in runtime.items() if k != "timeline"},
            "figures": {"faust_eps": runtime["throughput_eps"],
                        "naive_agents_eps": naive["throughput_eps"]},
            "naive_agents": {k: v for k, v in naive.items() if k != "timeline"},
            "speedup_over_naive": stats.ratio(runtime["throughput_eps"],
                                              naive["throughput_eps"]),
            "timeline": runtime["timeline"]}


# --- scale -----------------------------------------------------------------------------------


def scale(opts: Options) -> dict[str, Any]:
    """The same backlog through one worker, then two in the same group: events/s and the
    workers' CPU-seconds per 1,000 events (from /proc), whose ratio is the scaling efficiency."""
    runs = {}
    for n in (1, 2):
        with workers(opts, f"scale{n}", n=n) as ws:
            w = ws[0]
            time.sleep(3 if n > 1 else 0)  # let the group settle after the second join
            pids = [x.proc.pid for x in ws if x.proc is not None]

            async def go(w: Worker = w) -> dict[str, Any]:
                await fill(opts.bootstrap, inputs(w), Traffic().take(opts.scale_events))
                return await drain_backlog(opts, w.prefix, list(inputs(w).values()),
                                           opts.scale_events, opts.bound(90))

            cpu = [process_cpu(p) for p in pids]
            started = time.perf_counter()
            r = asyncio.run(go())
            r["seconds"] = round(time.perf_counter() - started, 2)  # fill included: it is live
            cpu_s = sum(process_cpu(p) - c for p, c in zip(pids, cpu, strict=True))
            r["throughput_eps"] = round(r["events_done"] / r["seconds"])
            r["cpu_seconds"] = round(cpu_s, 3)
            r["cpu_per_1k"] = stats.cpu_per_1k(cpu_s, r["events_done"])
            r["worker"] = worker_counters(ws)
            runs[n] = r
    one, two = runs[1]["throughput_eps"], runs[2]["throughput_eps"]
    timeline = [{"t": a["t"], "done_eps_1": a["done_eps"]} for a in runs[1]["timeline"]]
    for i, b in enumerate(runs[2]["timeline"]):
        if i < len(timeline):
            timeline[i]["done_eps_2"] = b["done_eps"]
        else:
            timeline.append({"t": b["t"], "done_eps_2": b["done_eps"]})
    cpu_one, cpu_two = runs[1]["cpu_per_1k"], runs[2]["cpu_per_1k"]
    return {
        "events": opts.scale_events, "throughput_eps": two,
        "figures": {"one_worker_eps": one, "two_workers_eps": two,
                    "cpu_per_1k_one": cpu_one, "cpu_per_1k_two": cpu_two,
                    "efficiency": stats.ratio(cpu_one, cpu_two)},
        "speedup": stats.ratio(two, one),
        "stopped_by": "events" if all(r["stopped_by"] == "events" for r in runs.values())
        else "time",
        "runs": {str(k): {k2: v for k2, v in r.items() if k2 != "timeline"}
                 for k, r in runs.items()},
        "probe_rule": opts.probe_rule, "timeline": timeline,
    }


# Order matters: the two ceilings first, so every later figure has its ratios in the same run.
STANDARD = ("baseline", "rdkafka", "embedded", "embedded_realistic", "peer", "replay",
            "replay_realistic", "backlog", "backlog_realistic", "steady", "spike", "ramp",
            "scale", "faust")
# Run `--repeats` times and reported by median and spread; the others (under an offered rate)
# run once and report latency percentiles.
THROUGHPUT = frozenset(("baseline", "rdkafka", "embedded", "embedded_realistic", "peer",
                        "replay", "replay_realistic", "backlog", "backlog_realistic", "scale",
                        "faust"))
ALL: dict[str, Callable[[Options], dict[str, Any]]] = {
    "baseline": baseline, "rdkafka": rdkafka_baseline, "embedded": embedded,
    "embedded_realistic": embedded_realistic, "peer": peer, "replay": replay,
    "replay_realistic": replay_realistic, "backlog": backlog,
    "backlog_realistic": backlog_realistic, "steady": steady, "ramp": ramp, "spike": spike,
    "scale": scale, "soak": soak, "faust": faust,
}
