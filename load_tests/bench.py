"""The SRE kit: how many events per second, at what latency, with how many workers.

    python -m load_tests.bench [--bootstrap 127.0.0.1:9092] [--quick] [scenario ...]

Standard set (`make bench`), each bounded in events and seconds, loopback only:

- `baseline`: a bare aiokafka consume -> produce passthrough of the bench traffic; `rdkafka`:
  the same loop on librdkafka (confluent-kafka, acks=all, idempotence, flush and commit per
  batch, the fetch queue tuned past its 1 s stall): the two ceilings every figure is divided by;
- `embedded`, `embedded_realistic`: the embedded runtime, shipped rules, one process (events/s),
  on the bench traffic and on the realistic multi-day history;
- `peer`: the bench traffic through a Quix Streams app keeping a per-contact count in RocksDB
  and producing once per event (librdkafka, tuned alike): the obvious alternative;
- `replay`, `replay_realistic`: `kairos replay` over a history file, the whole process
  (`--jobs 1` and `--jobs <the cores available>`);
- `backlog`, `backlog_realistic`: one `kairos worker` draining a backlog (its maximum events/s);
- `steady`: open loop at a fixed rate against one worker (each event sent at its scheduled
  time whatever the worker does: no coordinated omission); event -> action latency from the
  scheduled send time to the action's arrival on `next-best-actions` in an HDR histogram;
  consumer lag sampled every second;
- `spike`: a base rate, five times that for five seconds, the base again: peak lag, recovery;
- `ramp`: stepwise rates until p99 exceeds `--target-p99-ms` or lag grows: the highest
  sustained rate, then half of it as a check;
- `scale`: the same backlog through one worker, then two in one group: events/s and the
  workers' CPU-seconds per 1,000 events (scaling efficiency);
- `faust`: the Faust runtime draining the `backlog` traffic, beside the first version on Faust
  (three per-message agents, load_tests/naive_faust.py) as its baseline.

Throughput scenarios run `--repeats` times (default 3) and report the median and the spread
((max - min) / median); the summary flags any figure whose spread exceeds 15%.

Opt-in only: `soak` (steady at `--soak-rate` for `--soak-seconds`, default 30 minutes).

Each scenario writes `load_tests/results/<scenario>.json` and `<scenario>.png`; `summary.md`
gathers them. A scenario that fails is reported and the others still run; the exit status is 1
if any failed. Guide: docs/operations.md, "Benchmarks".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from load_tests import ceilings, report, scenarios, stats
from load_tests.harness import Options
from load_tests.stats import ratio

# `--quick`: a development run of every scenario in about three minutes; figures only indicative.
QUICK = {"events": 5_000, "passthrough_events": 30_000, "rdkafka_events": 60_000,
         "embedded_events": 5_000, "realistic_contacts": 200, "scale_events": 3_000,
         "seconds": 6.0, "ramp_step": 4.0, "drain": 5.0, "warmup": 1.0}


def parse(argv: list[str] | None = None) -> tuple[list[str], Options, Path]:
    d = Options()
    ap = argparse.ArgumentParser(
        prog="python -m load_tests.bench", description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("scenarios", nargs="*", default=list(scenarios.STANDARD),
                    help=f"any of {', '.join(scenarios.ALL)}")
    ap.add_argument("--bootstrap", default=os.environ.get("KAIROS_TEST_KAFKA", d.bootstrap))
    ap.add_argument("--quick", action="store_true",
                    help="fewer events and shorter phases, for development: " + ", ".join(
                        f"{k}={v:g}" for k, v in QUICK.items()))
    ap.add_argument("--repeats", type=int, default=d.repeats,
                    help="runs of each throughput scenario (median and spread)")
    ap.add_argument("--events", type=int, default=d.events,
                    help="backlog and replay on the bench traffic")
    ap.add_argument("--embedded-events", type=int, default=d.embedded_events)
    ap.add_argument("--passthrough-events", type=int, default=d.passthrough_events,
                    help="baseline and peer")
    ap.add_argument("--rdkafka-events", type=int, default=d.rdkafka_events)
    ap.add_argument("--realistic-contacts", type=int, default=d.realistic_contacts,
                    help="people in the realistic history (a week, and earlier stints)")
    ap.add_argument("--rate", type=float, default=d.rate, help="steady: events/s")
    ap.add_argument("--seconds", type=float, default=d.seconds, help="steady: seconds of load")
    ap.add_argument("--drain", type=float, default=d.drain,
                    help="longest wait for the last answers after the last send")
    ap.add_argument("--ramp-rates", default=",".join(f"{r:g}" for r in d.ramp_rates))
    ap.add_argument("--ramp-step", type=float, default=d.ramp_step, help="seconds per step")
    ap.add_argument("--target-p99-ms", type=float, default=d.target_p99_ms)
    ap.add_argument("--spike-rate", type=float, default=d.spike_rate)
    ap.add_argument("--spike-factor", type=float, default=d.spike_factor)
    ap.add_argument("--scale-events", type=int, default=d.scale_events)
    ap.add_argument("--soak-rate", type=float, default=d.soak_rate)
    ap.add_argument("--soak-seconds", type=float, default=d.soak_seconds)
    ap.add_argument("--no-probe-rule", dest="probe_rule", action="store_false",
                    help="workers run the shipped rules only (latency then rests on the few "
                         "events that cause an action)")
    ap.add_argument("--scenario-timeout", type=float, default=d.scenario_timeout)
    ap.add_argument("--budget", type=float, default=540.0,
                    help="seconds for the whole run; later scenarios are cut short to fit")
    ap.add_argument("--results", type=Path, default=report.RESULTS)
    a = ap.parse_args(argv)
    unknown = [s for s in a.scenarios if s not in scenarios.ALL]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; choose from {list(scenarios.ALL)}")
    opts = Options(
        bootstrap=a.bootstrap, events=a.events, passthrough_events=a.passthrough_events,
        rdkafka_events=a.rdkafka_events, realistic_contacts=a.realistic_contacts,
        embedded_events=a.embedded_events, repeats=max(1, a.repeats), rate=a.rate,
        seconds=a.seconds, drain=a.drain,
        ramp_rates=tuple(float(r) for r in a.ramp_rates.split(",") if r),
        ramp_step=a.ramp_step, target_p99_ms=a.target_p99_ms, spike_rate=a.spike_rate,
        spike_factor=a.spike_factor, scale_events=a.scale_events, soak_rate=a.soak_rate,
        soak_seconds=a.soak_seconds, probe_rule=a.probe_rule,
        scenario_timeout=a.scenario_timeout, deadline=time.monotonic() + a.budget,
    )
    if a.quick:
        for key, value in QUICK.items():
            setattr(opts, key, value)
    return a.scenarios, opts, a.results


def measure(name: str, opts: Options) -> dict[str, Any]:
    """One scenario: a throughput one `opts.repeats` times (fewer if the budget runs out),
    combined into medians and spreads; the others once."""
    n = opts.repeats if name in scenarios.THROUGHPUT else 1
    runs = []
    for i in range(n):
        if i and opts.deadline - time.monotonic() < 5:
            break
        print(f"--- {name}" + (f" (run {i + 1} of {n})" if n > 1 else ""), file=sys.stderr,
              flush=True)
        runs.append(scenarios.ALL[name](opts))
    return stats.combine(runs) if name in scenarios.THROUGHPUT else runs[0]


def with_ceilings(result: dict[str, Any], ceiling: dict[str, float | None]) -> dict[str, Any]:
    """Every absolute figure next to both passthroughs of the same run, and as ratios to both."""
    result["passthroughs_eps"] = dict(ceiling)
    result["passthrough_ratio"] = ratio(result.get("throughput_eps"), ceiling["aiokafka"])
    result["librdkafka_ratio"] = ratio(result.get("throughput_eps"), ceiling["librdkafka"])
    result["figure_ratios"] = {
        k: {c: ratio(v, base) for c, base in ceiling.items()}
        for k, v in (result.get("figures") or {}).items() if k.endswith("_eps")}
    return result


def run(names: list[str], opts: Options, out: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    ceiling: dict[str, float | None] = {"aiokafka": None, "librdkafka": None}
    try:
        for name in names:
            started = time.monotonic()
            if name != "soak" and opts.deadline - time.monotonic() < 5:
                results.append(report.write(name, {"skipped": "run budget spent"}, out))
                continue
            try:
                result = measure(name, opts)
            except Exception as exc:  # one broken scenario must not hide the others' results
                traceback.print_exc()
                result = {"error": f"{type(exc).__name__}: {exc}"}
            result["wall_seconds"] = round(time.monotonic() - started, 1)
            if name in ("baseline", "rdkafka"):
                ceiling["aiokafka" if name == "baseline" else "librdkafka"] = \
                    result.get("throughput_eps")
            results.append(report.write(name, with_ceilings(result, ceiling), out))
    finally:
        ceilings.cleanup(opts)
    (out / "summary.md").write_text(report.render_summary(results))
    print(report.render_summary(results), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    names, opts, out = parse(argv)
    results = run(names, opts, out)
    failed = [r["scenario"] for r in results if "error" in r]
    if failed:
        print(json.dumps({"failed": failed}), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
