"""The SRE kit: how many events per second, at what latency, with how many workers.

    python -m load_tests.bench [--bootstrap 127.0.0.1:9092] [scenario ...]

Standard set (`make bench`), each bounded in events and seconds, loopback only:

- `embedded`: the traffic through the embedded runtime, shipped rules, one process (events/s);
- `baseline`: a bare aiokafka consume -> produce passthrough of the same traffic on the same
  broker: the Python-on-Kafka ceiling every worker figure is divided by (passthrough ratio);
- `peer`: the same traffic through a Quix Streams app keeping a per-contact count in RocksDB
  and producing once per event: the obvious alternative, measured in the same run;
- `backlog`: one `kairos worker` draining a backlog (its maximum events/s);
- `steady`: open loop at a fixed rate against one worker (each event sent at its scheduled
  time whatever the worker does: no coordinated omission); event -> action latency from the
  scheduled send time to the action's arrival on `next-best-actions` in an HDR histogram;
  consumer lag sampled every second;
- `spike`: a base rate, five times that for five seconds, the base again: peak lag, recovery;
- `ramp`: stepwise rates until p99 exceeds `--target-p99-ms` or lag grows: the highest
  sustained rate, then half of it as a check;
- `scale`: the same backlog through one worker, then two in one group.

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

from load_tests import report, scenarios
from load_tests.harness import Options
from load_tests.stats import ratio


def parse(argv: list[str] | None = None) -> tuple[list[str], Options, Path]:
    d = Options()
    ap = argparse.ArgumentParser(
        prog="python -m load_tests.bench", description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("scenarios", nargs="*", default=list(scenarios.STANDARD),
                    help=f"any of {', '.join(scenarios.ALL)}")
    ap.add_argument("--bootstrap", default=os.environ.get("KAIROS_TEST_KAFKA", d.bootstrap))
    ap.add_argument("--events", type=int, default=d.events, help="embedded and backlog")
    ap.add_argument("--passthrough-events", type=int, default=d.passthrough_events,
                    help="baseline and peer")
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
        rate=a.rate, seconds=a.seconds, drain=a.drain,
        ramp_rates=tuple(float(r) for r in a.ramp_rates.split(",") if r),
        ramp_step=a.ramp_step, target_p99_ms=a.target_p99_ms, spike_rate=a.spike_rate,
        spike_factor=a.spike_factor, scale_events=a.scale_events, soak_rate=a.soak_rate,
        soak_seconds=a.soak_seconds, probe_rule=a.probe_rule,
        scenario_timeout=a.scenario_timeout, deadline=time.monotonic() + a.budget,
    )
    return a.scenarios, opts, a.results


def run(names: list[str], opts: Options, out: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    ceiling = None
    for name in names:
        print(f"--- {name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        if name != "soak" and opts.deadline - time.monotonic() < 5:
            results.append(report.write(name, {"skipped": "run budget spent"}, out))
            continue
        try:
            result = scenarios.ALL[name](opts)
        except Exception as exc:  # one broken scenario must not hide the others' results
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        if name == "baseline":
            ceiling = result.get("throughput_eps")
        # every figure is also a share of the passthrough measured earlier in the same run
        result["passthrough_ratio"] = ratio(result.get("throughput_eps"), ceiling)
        results.append(report.write(name, result, out))
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
