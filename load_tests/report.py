"""Results: one JSON and one PNG per scenario, and `summary.md` over all of them."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

# The targets, checked in the summary against what the run measured.
EMBEDDED_TARGET_EPS = 50_000
WORKER_TARGET_RATIO = 0.5
STEADY_TARGET_RATE, STEADY_TARGET_P99_MS = 1000.0, 25.0
SCALE_TARGET = 1.6


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


def _times(v: float | None) -> str:
    return "-" if v is None else f"x{v:.2f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def render_summary(results: Sequence[dict[str, Any]]) -> str:
    """The markdown summary: one row per scenario, the scenario-specific findings, targets."""
    by = {r["scenario"]: r for r in results}
    lines = [
        "# Benchmark summary", "",
        "| scenario | rate | events | events/s | vs passthrough | p50 ms | p99 ms | p99.9 ms "
        "| max ms | max lag | stopped by |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lat = r.get("latency_ms") or {}
        lines.append("| " + " | ".join([
            r["scenario"], _fmt(r.get("rate")), _fmt(r.get("events")),
            _fmt(r.get("throughput_eps")), _pct(r.get("passthrough_ratio")),
            _fmt(lat.get("p50")), _fmt(lat.get("p99")), _fmt(lat.get("p99.9")),
            _fmt(lat.get("max")), _fmt((r.get("lag") or {}).get("max")),
            r.get("stopped_by", "-"),
        ]) + " |")
    lines += ["", *_findings(by), *_targets(by)]
    if results:
        m = results[0].get("machine", {})
        lines += ["", f"Machine: {m.get('cpus')} x {m.get('cpu_model') or m.get('arch')}, "
                  f"Python {m.get('python')}; revision {results[0].get('git_revision')}."]
    return "\n".join(lines) + "\n"


def _findings(by: dict[str, dict[str, Any]]) -> list[str]:
    out = [f"- {name}: {r.get('error') or 'skipped: ' + str(r['skipped'])}"
           for name, r in by.items() if r.get("error") or r.get("skipped")]
    if "ramp" in by:
        r = by["ramp"]
        out.append(f"- ramp: highest sustained rate {_fmt(r.get('max_sustainable_rate'))} events/s "
                   f"(p99 <= {_fmt(r.get('target_p99_ms'))} ms, lag not growing); steps "
                   + ", ".join(f"{_fmt(s['rate'])}{'' if s['ok'] else ' (failed)'}"
                               for s in r.get("steps", [])) + ".")
    if "spike" in by:
        r = by["spike"]
        out.append(f"- spike: peak lag {_fmt((r.get('lag') or {}).get('max'))}, back to normal "
                   f"{_fmt(r.get('recovery_s'))} s after the spike.")
    if "scale" in by:
        r = by["scale"]
        out.append(f"- scale: 1 worker {_fmt(r.get('one_worker_eps'))} events/s, 2 workers "
                   f"{_fmt(r.get('two_workers_eps'))} events/s ({_times(r.get('speedup'))}).")
    if "peer" in by and by["peer"].get("available", True):
        r = by["peer"]
        out.append(f"- peer: Quix Streams stateful count + produce {_fmt(r.get('throughput_eps'))}"
                   f" events/s ({_pct(r.get('passthrough_ratio'))} of passthrough).")
    return out


def _targets(by: dict[str, dict[str, Any]]) -> list[str]:
    rows = []

    def row(what: str, measured: str, ok: bool | None) -> None:
        rows.append(f"| {what} | {measured} | {'-' if ok is None else 'yes' if ok else 'no'} |")

    if "embedded" in by:
        eps = by["embedded"].get("throughput_eps")
        row(f"embedded >= {EMBEDDED_TARGET_EPS:,} events/s", _fmt(eps),
            None if eps is None else eps >= EMBEDDED_TARGET_EPS)
    if "backlog" in by:
        ratio = by["backlog"].get("passthrough_ratio")
        row(f"one worker >= {WORKER_TARGET_RATIO:.0%} of passthrough", _pct(ratio),
            None if ratio is None else ratio >= WORKER_TARGET_RATIO)
    if "steady" in by:
        s = by["steady"]
        p99 = (s.get("latency_ms") or {}).get("p99")
        at_target = s.get("rate") == STEADY_TARGET_RATE
        row(f"p99 <= {STEADY_TARGET_P99_MS:g} ms at {STEADY_TARGET_RATE:g} events/s",
            f"{_fmt(p99)} ms at {_fmt(s.get('rate'))} events/s",
            None if p99 is None or not at_target else p99 <= STEADY_TARGET_P99_MS)
    if "ramp" in by and by["ramp"].get("half_rate_p99_ms") is not None:
        p99 = by["ramp"]["half_rate_p99_ms"]
        row("p99 <= 50 ms at half the highest sustained rate", f"{_fmt(p99)} ms", p99 <= 50)
    if "scale" in by:
        sp = by["scale"].get("speedup")
        row(f"2 workers >= {SCALE_TARGET}x one", _times(sp),
            None if sp is None else sp >= SCALE_TARGET)
    if not rows:
        return []
    return ["", "| target | measured | met |", "| --- | --- | --- |", *rows]
