"""Results: one JSON and one PNG per scenario, and `summary.md` over all of them."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from load_tests.stats import SPREAD_LIMIT, noisy_figures, workers_for

RESULTS = Path(__file__).parent / "results"

# The targets, checked in the summary against what the run measured (ratios: to aiokafka).
EMBEDDED_TARGET_EPS = 30_000
BACKLOG_TARGET_RATIO = 0.35  # every event answered (the probe rule)
SHIPPED_TARGET_RATIO = 0.5  # shipped rules only (--no-probe-rule)
STEADY_TARGET_RATE, STEADY_TARGET_P99_MS, STEADY_TARGET_P999_MS = 1000.0, 25.0, 50.0
RAMP_TARGET_RATIO = 0.15
SCALE_TARGET_EFFICIENCY = 0.9
REPLAY_TARGET_EPS = 25_000
SIZING_RATES = (1_000, 10_000, 50_000, 100_000)  # the "workers needed" line


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                         "")
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("aiokafka", "quixstreams", "confluent-kafka", "rocksdict"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "arch": platform.machine(),
        "python": platform.python_version(), "system": platform.system(),
        "load_average": [round(x, 2) for x in os.getloadavg()], "versions": versions,
    }


def git_revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).parent).stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def write(name: str, result: dict[str, Any], directory: Path = RESULTS) -> dict[str, Any]:
    """`<directory>/<name>.json` with the machine and revision, and a plot if it has a timeline."""
    directory.mkdir(parents=True, exist_ok=True)
    result = {"scenario": name, **result, "machine": machine(), "git_revision": git_revision()}
    (directory / f"{name}.json").write_text(json.dumps(result, indent=2))
    if result.get("timeline"):
        plot(result["timeline"], _title(result), directory / f"{name}.png")
    brief = {k: v for k, v in result.items() if k not in ("timeline", "machine", "steps")}
    print(json.dumps(brief), flush=True)
    return result


def _title(r: dict[str, Any]) -> str:
    rate = f" at {r['rate']:g} events/s" if r.get("rate") else ""
    return f"{r['scenario']}{rate}: {r.get('events', '?')} events"


def plot(timeline: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    """Latency percentiles, throughput and lag over time; panels only for what was measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("event -> action (ms)", ["p50_ms", "p90_ms", "p99_ms", "max_ms"], True),
        ("events/s", ["sent_eps", "done_eps", "done_eps_1", "done_eps_2"], False),
        ("consumer lag (messages)", ["lag", "lag_inputs", "in_flight"], False),
    ]
    shown = [(label, [k for k in keys if any(s.get(k) is not None for s in timeline)], log)
             for label, keys, log in panels]
    shown = [p for p in shown if p[1]]
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.6 * len(shown) + 0.6), sharex=True,
                             squeeze=False)
    t = [s["t"] for s in timeline]
    for ax, (label, keys, log) in zip(axes[:, 0], shown, strict=True):
        for k in keys:
            ax.plot(t, [s.get(k) for s in timeline], label=k.removesuffix("_ms"))
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _num(v: float | None) -> str:
    """A small figure (CPU-seconds, an efficiency) to three decimals."""
    return "-" if v is None else f"{v:.3f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _spread(r: dict[str, Any]) -> str:
    rep = (r.get("repeats") or {}).get("throughput_eps")
    if not rep or rep["spread"] is None:
        return "-"
    return f"{rep['spread']:.0%} of {len(rep['runs'])}" + (" (noisy)" if rep["noisy"] else "")


def render_summary(results: Sequence[dict[str, Any]]) -> str:
    """The markdown summary: one row per scenario, the scenario-specific findings, targets."""
    by = {r["scenario"]: r for r in results}
    lines = [
        "# Benchmark summary", "",
        "Throughput: the median of the runs; spread = (max - min) / median, flagged above "
        f"{SPREAD_LIMIT:.0%}. Ratios to both passthroughs of this run.", "",
        "| scenario | workload | rate | events | events/s | spread | vs aiokafka "
        "| vs librdkafka | p50 ms | p99 ms | p99.9 ms | max ms | max lag | stopped by |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lat = r.get("latency_ms") or {}
        lines.append("| " + " | ".join([
            r["scenario"], r.get("workload", "-"), _fmt(r.get("rate")), _fmt(r.get("events")),
            _fmt(r.get("throughput_eps")), _spread(r), _pct(r.get("passthrough_ratio")),
            _pct(r.get("librdkafka_ratio")), _fmt(lat.get("p50")), _fmt(lat.get("p99")),
            _fmt(lat.get("p99.9")), _fmt(lat.get("max")),
            _fmt((r.get("lag") or {}).get("max")), r.get("stopped_by", "-"),
        ]) + " |")
    lines += ["", *_findings(by), *_targets(by)]
    if results:
        m = results[0].get("machine", {})
        lines += ["", f"Machine: {m.get('cpus')} x {m.get('cpu_model') or m.get('arch')}, "
                  f"Python {m.get('python')}, load average {m.get('load_average')}; revision "
                  f"{results[0].get('git_revision')}."]
    return "\n".join(lines) + "\n"


def _ratios(r: dict[str, Any], figure: str) -> str:
    """`<figure> events/s (x% of aiokafka, y% of librdkafka)`."""
    vs = (r.get("figure_ratios") or {}).get(figure, {})
    return (f"{_fmt((r.get('figures') or {}).get(figure))} events/s "
            f"({_pct(vs.get('aiokafka'))} of aiokafka, {_pct(vs.get('librdkafka'))} of "
            "librdkafka)")


def _findings(by: dict[str, dict[str, Any]]) -> list[str]:
    out = [f"- {name}: {r.get('error') or 'skipped: ' + str(r['skipped'])}"
           for name, r in by.items() if r.get("error") or r.get("skipped")]
    noisy = [f"{name} {fig} ({r['repeats'][fig]['spread']:.0%})"
             for name, r in by.items() for fig in noisy_figures(r)]
    if noisy:
        out.append(f"- NOISY (spread over {SPREAD_LIMIT:.0%}, do not compare): "
                   + ", ".join(noisy) + ".")
    for name in ("baseline", "rdkafka"):
        if by.get(name, {}).get("throughput_eps"):
            r = by[name]
            stall = f", stalled {r['stalled_s']:g} s" if "stalled_s" in r else ""
            out.append(f"- {name}: {r.get('client')} passthrough {_fmt(r['throughput_eps'])} "
                       f"events/s, {_fmt(r.get('cpu_us_per_event'))} us CPU per event{stall}.")
    if by.get("peer", {}).get("throughput_eps"):
        r = by["peer"]
        hit = "hit" if r.get("stalled_s") else "did not hit"
        out.append(f"- peer: Quix Streams stateful count + produce {_fmt(r['throughput_eps'])} "
                   f"events/s ({_pct(r.get('passthrough_ratio'))} of aiokafka, "
                   f"{_pct(r.get('librdkafka_ratio'))} of librdkafka); tuned, it {hit} "
                   f"librdkafka's fetch stall ({_fmt(r.get('stalled_s'))} s stalled).")
    for name in ("replay", "replay_realistic"):
        r = by.get(name, {})
        if r.get("figures"):
            out.append(f"- {name}: " + "; ".join(
                f"{fig.removesuffix('_eps').replace('_', ' ')}: {_ratios(r, fig)}"
                for fig in r["figures"]) + ".")
    shares = [f"{name} {by[name]['action_share']:.0%}" for name in
              ("embedded", "embedded_realistic", "replay", "replay_realistic")
              if by.get(name, {}).get("action_share") is not None]
    if shares:
        out.append("- share of events yielding an action (shipped rules; embedded with the "
                   "unlimited policy, replay with the default one): " + ", ".join(shares) + ".")
    out += _scale(by.get("scale", {}))
    if "ramp" in by and not by["ramp"].get("error"):
        r = by["ramp"]
        out.append(f"- ramp: highest sustained rate {_fmt(r.get('max_sustainable_rate'))} events/s "
                   f"(p99 <= {_fmt(r.get('target_p99_ms'))} ms, lag not growing); steps "
                   + ", ".join(f"{_fmt(s['rate'])}{'' if s['ok'] else ' (failed)'}"
                               for s in r.get("steps", [])) + ".")
    if "spike" in by and not by["spike"].get("error"):
        r = by["spike"]
        out.append(f"- spike: peak lag {_fmt((r.get('lag') or {}).get('max'))}, back to normal "
                   f"{_fmt(r.get('recovery_s'))} s after the spike.")
    return out


def _scale(r: dict[str, Any]) -> list[str]:
    f = r.get("figures") or {}
    if not f:
        return []
    out = [f"- scale: 1 worker {_ratios(r, 'one_worker_eps')}, 2 workers "
           f"{_ratios(r, 'two_workers_eps')}; CPU-seconds per 1,000 events "
           f"{_num(f.get('cpu_per_1k_one'))} (one) and {_num(f.get('cpu_per_1k_two'))} (two): "
           f"scaling efficiency {_num(f.get('efficiency'))} (target >= "
           f"{SCALE_TARGET_EFFICIENCY})."]
    if f.get("cpu_per_1k_two"):
        out.append("- workers needed (a core each, 70% busy, at the two-worker CPU cost): "
                   + ", ".join(f"{rate:,} events/s -> {workers_for(rate, f['cpu_per_1k_two'])}"
                               for rate in SIZING_RATES) + ".")
    return out


def _targets(by: dict[str, dict[str, Any]]) -> list[str]:
    rows = []

    def row(what: str, measured: str, ok: bool | None) -> None:
        rows.append(f"| {what} | {measured} | {'-' if ok is None else 'yes' if ok else 'no'} |")

    def check(name: str, what: str, value: Callable[[dict[str, Any]], float | None],
              shown: Callable[[float | None], str], ok: Callable[[float], bool]) -> None:
        r = by.get(name)
        if r is not None:
            v = value(r)
            row(what, shown(v), None if v is None else ok(v))

    check("embedded", f"embedded, bench traffic >= {EMBEDDED_TARGET_EPS:,} events/s",
          lambda r: r.get("throughput_eps"), _fmt, lambda v: v >= EMBEDDED_TARGET_EPS)
    worker = by.get("backlog", {})
    target, what = ((BACKLOG_TARGET_RATIO, "one worker, every event answered")
                    if worker.get("probe_rule", True) else
                    (SHIPPED_TARGET_RATIO, "one worker, shipped rules"))
    check("backlog", f"{what} >= {target:.0%} of aiokafka",
          lambda r: r.get("passthrough_ratio"), _pct, lambda v: v >= target)
    if "steady" in by:
        s = by["steady"]
        lat = s.get("latency_ms") or {}
        p99, p999 = lat.get("p99"), lat.get("p99.9")
        at_target = s.get("rate") == STEADY_TARGET_RATE
        row(f"p99 <= {STEADY_TARGET_P99_MS:g} ms, p99.9 <= {STEADY_TARGET_P999_MS:g} ms at "
            f"{STEADY_TARGET_RATE:g} events/s",
            f"{_fmt(p99)} / {_fmt(p999)} ms at {_fmt(s.get('rate'))} events/s",
            None if p99 is None or p999 is None or not at_target
            else p99 <= STEADY_TARGET_P99_MS and p999 <= STEADY_TARGET_P999_MS)
    check("ramp", f"highest rate with p99 <= 50 ms >= {RAMP_TARGET_RATIO:.0%} of aiokafka",
          lambda r: ratio_of(r.get("max_sustainable_rate") or (0.0 if r.get("steps") else None),
                             by), _pct,
          lambda v: v >= RAMP_TARGET_RATIO)
    check("scale", f"scaling efficiency (CPU per event) >= {SCALE_TARGET_EFFICIENCY}",
          lambda r: (r.get("figures") or {}).get("efficiency"), _num,
          lambda v: v >= SCALE_TARGET_EFFICIENCY)
    check("replay_realistic", f"replay, realistic history >= {REPLAY_TARGET_EPS:,} events/s",
          lambda r: r.get("throughput_eps"), _fmt, lambda v: v >= REPLAY_TARGET_EPS)
    if not rows:
        return []
    return ["", "| target | measured | met |", "| --- | --- | --- |", *rows]


def ratio_of(value: float | None, by: dict[str, dict[str, Any]]) -> float | None:
    """`value` as a share of this run's aiokafka passthrough."""
    base = by.get("baseline", {}).get("throughput_eps")
    return round(value / base, 3) if value is not None and base else None
