"""The benchmark kit's pure parts: traffic shape, latency arithmetic, the ramp's stop rule,
the summary. Nothing here is timed."""

from collections import Counter

import orjson
import pytest

from engine.obs.metrics import Metrics
from engine.testing.kafka import free_port
from load_tests import report, stats
from load_tests.kafka_io import WORKER_HISTOGRAM, Phase, buckets
from load_tests.traffic import MIX, Traffic, realistic, sequence_of


@pytest.fixture(scope="module")
def sample() -> list:
    return Traffic(seed=7, start=1_800_000_000.0).take(20_000)


def test_traffic_is_deterministic_and_continues_its_sequence():
    a, b = Traffic(seed=3, start=0.0), Traffic(seed=3, start=0.0)
    assert a.take(50) == b.take(50)
    assert [r.seq for r in a.take(3)] == [50, 51, 52]


def test_event_mix_follows_the_declared_weights(sample):
    kinds = Counter(_kind(r) for r in sample)
    total = sum(w for w, _ in MIX)
    for weight, kind in MIX:
        assert kinds[kind] / len(sample) == pytest.approx(weight / total, abs=0.015), kind


def test_contacts_are_zipf_skewed():
    t = Traffic(contacts=10_000, seed=1, start=0.0)
    counts = Counter(t.contact() for _ in range(50_000))
    ranked = [n for _, n in counts.most_common()]
    assert counts.most_common(1)[0][0] == 0  # rank 1 is the busiest contact
    assert ranked[0] / ranked[9] == pytest.approx(10**1.1, rel=0.3)  # f(1)/f(10) = 10^s
    assert sum(ranked[:100]) / 50_000 > 0.5  # 1% of contacts make most of the traffic
    assert len(counts) > 3_000  # and a long tail is still seen


def test_records_go_to_their_topic_keyed_and_numbered(sample):
    for r in sample[:500]:
        body = orjson.loads(r.value)
        if r.topic == "email":
            assert (body["sg_event_id"], r.key.decode()) == (f"L{r.seq}", body["email"])
        elif r.topic == "social":
            assert (body["event_id"], r.key.decode()) == (f"L{r.seq}", body["handle"])
        else:
            assert (body["messageId"], r.key.decode()) == (f"L{r.seq}", body["userId"])


def test_retime_sets_event_times_from_the_next_record_on():
    t = Traffic(seed=2, start=0.0)
    t.take(10)
    t.retime(1_800_000_000.0, 0.5)
    times = [_time(r) for r in t.take(3)]
    assert times == [1_800_000_000.0, 1_800_000_000.5, 1_800_000_001.0]


def test_sequence_of_reads_only_load_ids():
    assert sequence_of("L42") == 42
    assert sequence_of("msg-42") is None
    assert sequence_of("L") is None


def test_latency_percentiles_in_ms():
    lat = stats.Latency()
    assert lat.percentiles_ms()["p99"] is None
    for ms in range(1, 1001):
        lat.record(ms / 1000)
    p = lat.percentiles_ms()
    assert p["p50"] == pytest.approx(500, rel=0.01)
    assert p["p99"] == pytest.approx(990, rel=0.01)
    assert p["p99.9"] == pytest.approx(999, rel=0.01)
    assert p["max"] == pytest.approx(1000, rel=0.01)
    assert lat.count == 1000


def test_slope_in_units_per_sample():
    assert stats.slope([0, 10, 20, 30]) == pytest.approx(10)
    assert stats.slope([5]) == 0.0


@pytest.mark.parametrize(
    ("lags", "grows"),
    [
        ([20, 25, 18, 22, 30, 21, 24, 19], False),  # flat noise
        ([20, 20, 20, 20, 20, 300, 20, 20], False),  # one commit stall
        ([10, 10, 10, 10, 10, 10, 300, 310], False),  # a stall at the very end: median of 3
        ([0, 250, 500, 750, 1000, 1250, 1500, 1750], True),  # 250/s behind at 1000/s
        ([5000, 4000, 3000, 2000, 1000, 0, 0, 0], False),  # catching up
        ([], False),
    ],
)
def test_lag_growing(lags, grows):
    assert stats.lag_growing(lags, rate=1000) is grows


def test_ramp_stops_at_the_first_failed_step():
    steps = [
        stats.Step(100, 12.0, False),
        stats.Step(200, 20.0, False),
        stats.Step(400, 80.0, False),  # p99 over the target
        stats.Step(800, 10.0, False),  # never reached in a real ramp; ignored anyway
    ]
    assert stats.max_sustainable(steps, target_p99_ms=50) == 200


@pytest.mark.parametrize(
    ("step", "ok"),
    [
        (stats.Step(100, 49.9, False), True),
        (stats.Step(100, 50.1, False), False),
        (stats.Step(100, 10.0, True), False),  # lag grew
        (stats.Step(100, 10.0, False, unanswered_share=0.2), False),  # answers missing
        (stats.Step(100, None, False), False),  # nothing measured
    ],
)
def test_step_ok(step, ok):
    assert stats.step_ok(step, target_p99_ms=50) is ok


def test_no_sustained_rate_when_the_first_step_fails():
    assert stats.max_sustainable([stats.Step(100, 500.0, False)], 50) is None


def test_summary_shows_ratios_findings_and_targets():
    ceil = {"passthroughs_eps": {"aiokafka": 10_000, "librdkafka": 50_000}}
    results = [
        {"scenario": "baseline", "client": "aiokafka", "events": 1000, "throughput_eps": 10_000,
         "cpu_us_per_event": 20.0, "passthrough_ratio": 1.0, "librdkafka_ratio": 0.2,
         "stopped_by": "events", "git_revision": "abc1234",
         "machine": {"cpus": 2, "cpu_model": "Test CPU", "python": "3.11"}},
        {"scenario": "steady", "rate": 1000.0, "events": 20_000, "throughput_eps": 1000,
         "passthrough_ratio": 0.1, "librdkafka_ratio": 0.02,
         "latency_ms": {"p50": 5.0, "p99": 20.0, "p99.9": 30.0, "max": 40.0},
         "lag": {"max": 12}, "stopped_by": "events"},
        {"scenario": "ramp", "max_sustainable_rate": 2000.0, "target_p99_ms": 50.0,
         "steps": [{"rate": 1000.0, "ok": True}, {"rate": 2000.0, "ok": True},
                   {"rate": 3000.0, "ok": False}], "half_rate_p99_ms": 60.0},
        {"scenario": "scale", "throughput_eps": 1500, **ceil,
         "figures": {"one_worker_eps": 1000, "two_workers_eps": 1500, "cpu_per_1k_one": 0.5,
                     "cpu_per_1k_two": 0.625, "efficiency": 0.8},
         "figure_ratios": {"one_worker_eps": {"aiokafka": 0.1, "librdkafka": 0.02},
                           "two_workers_eps": {"aiokafka": 0.15, "librdkafka": 0.03}}},
        {"scenario": "embedded", "workload": "bench", "events": 5000, "throughput_eps": 40_000,
         "action_share": 0.05, "passthrough_ratio": 4.0, "librdkafka_ratio": 0.8,
         "repeats": {"throughput_eps": stats.repeated([30_000, 40_000, 41_000])}},
        {"scenario": "replay", "workload": "bench", "throughput_eps": 4000, **ceil,
         "figures": {"jobs_1_eps": 3000, "jobs_2_eps": 4000},
         "figure_ratios": {"jobs_1_eps": {"aiokafka": 0.3, "librdkafka": 0.06},
                           "jobs_2_eps": {"aiokafka": 0.4, "librdkafka": 0.08}}},
        {"scenario": "replay_realistic", "workload": "realistic", "throughput_eps": 2000, **ceil,
         "figures": {"jobs_1_eps": 1500, "jobs_2_eps": 2000},
         "figure_ratios": {"jobs_1_eps": {"aiokafka": 0.15, "librdkafka": 0.03},
                           "jobs_2_eps": {"aiokafka": 0.2, "librdkafka": 0.04}}},
        {"scenario": "peer", "error": "RuntimeError: peer app failed"},
    ]
    text = report.render_summary(results)
    assert "- replay: jobs 1: 3,000 events/s (30% of aiokafka, 6% of librdkafka); jobs 2: " \
        "4,000 events/s (40% of aiokafka, 8% of librdkafka)." in text
    assert "- replay_realistic: jobs 1: 1,500 events/s (15% of aiokafka, 3% of librdkafka); " \
        "jobs 2: 2,000 events/s (20% of aiokafka, 4% of librdkafka)." in text
    assert ("| steady | - | 1,000 | 20,000 | 1,000 | - | 10% | 2% | 5.0 | 20.0 | 30.0 | 40.0 "
            "| 12 | events |") in text
    assert "| embedded | bench | - | 5,000 | 40,000 | 28% of 3 (noisy) | 400% | 80% |" in text
    assert "- NOISY (spread over 15%, do not compare): embedded throughput_eps (28%)." in text
    assert "- baseline: aiokafka passthrough 10,000 events/s, 20.0 us CPU per event." in text
    assert "steps 1,000, 2,000, 3,000 (failed)" in text
    assert "| p99 <= 25 ms, p99.9 <= 50 ms at 1000 events/s | 20.0 / 30.0 ms at 1,000 " \
        "events/s | yes |" in text
    assert "| highest rate with p99 <= 50 ms >= 15% of aiokafka | 20% | yes |" in text
    results[2] = {"scenario": "ramp", "max_sustainable_rate": None, "target_p99_ms": 50.0,
                  "steps": [{"rate": 100.0, "ok": False}]}
    assert "| highest rate with p99 <= 50 ms >= 15% of aiokafka | 0% | no |" \
        in report.render_summary(results)  # not even the first step held
    assert "| embedded, bench traffic >= 30,000 events/s | 40,000 | yes |" in text
    assert "| scaling efficiency (CPU per event) >= 0.9 | 0.800 | no |" in text
    assert "1 worker 1,000 events/s (10% of aiokafka, 2% of librdkafka)" in text
    assert "CPU-seconds per 1,000 events 0.500 (one) and 0.625 (two): scaling efficiency 0.800" \
        in text
    # 0.625 CPU-s per 1k events: 10,000 events/s is 6.25 cores, at 70% busy 9 workers
    assert "10,000 events/s -> 9" in text
    assert "embedded 5%" in text
    assert "| peer | - | - | - | - |" in text  # a failed scenario still has its row
    assert "- peer: RuntimeError: peer app failed" in text
    assert "revision abc1234" in text


def test_spread_is_max_minus_min_over_the_median():
    assert stats.spread([90, 100, 110]) == pytest.approx(0.2)
    assert stats.spread([100, 100, 100]) == 0.0
    assert stats.spread([]) is None


@pytest.mark.parametrize(("values", "noisy"), [
    ([100, 107, 114], False),  # 14%: within
    ([100, 110, 118], True),  # 16% of 110: flagged
    ([500, 1000, 1000], True),  # one bad run among three
])
def test_a_figure_is_noisy_above_fifteen_percent(values, noisy):
    r = stats.repeated(values)
    assert r["noisy"] is noisy
    assert r["median"] == sorted(values)[1]
    assert r["runs"] == values


def test_combine_keeps_the_median_run_and_medians_every_figure():
    runs = [
        {"throughput_eps": 300, "events": 3, "figures": {"jobs_1_eps": 10, "efficiency": 0.9}},
        {"throughput_eps": 100, "events": 1, "figures": {"jobs_1_eps": 30, "efficiency": 0.5}},
        {"throughput_eps": 200, "events": 2, "figures": {"jobs_1_eps": 20, "efficiency": 1.0}},
    ]
    out = stats.combine(runs)
    assert out["events"] == 2  # the details are the median run's
    assert out["throughput_eps"] == 200
    assert out["figures"] == {"jobs_1_eps": 20, "efficiency": 0.9}
    assert out["repeats"]["throughput_eps"]["runs"] == [300, 100, 200]
    assert out["repeats"]["jobs_1_eps"]["spread"] == pytest.approx(1.0)
    assert stats.noisy_figures(out) == ["throughput_eps", "jobs_1_eps", "efficiency"]


def test_combine_of_one_run_has_no_spread_to_flag():
    out = stats.combine([{"throughput_eps": 100}])
    assert out["repeats"]["throughput_eps"] == {"runs": [100], "median": 100, "spread": 0.0,
                                                "noisy": False}
    with pytest.raises(ValueError, match="no runs to combine"):
        stats.combine([])


def test_combine_skips_figures_a_run_could_not_measure():
    out = stats.combine([{"throughput_eps": 1, "figures": {"efficiency": None}},
                         {"throughput_eps": 2, "figures": {"efficiency": 0.9}}])
    assert "efficiency" not in out["repeats"]
    assert out["throughput_eps"] == 1.5


@pytest.mark.parametrize(("counts", "stalled"), [
    ([100, 4000, 4000, 4000, 4000, 300], 0.0),  # ramp-up and tail are not stalls
    ([500, 4000, 0, 0, 0, 0, 4000, 4000, 200], 1.0),  # librdkafka's 1 s fetch backoff
    ([0, 0, 4000, 4000, 10, 0, 0, 4000, 4000, 0], 0.75),  # leading and trailing idle ignored
    ([4000, 0, 0, 4000, 0, 4000, 4000], 0.0),  # half-second gaps: batches straddling buckets
    ([4000, 4000, 0, 0, 0, 4000, 0, 0, 0, 0, 4000], 1.75),  # two stalls
    ([4000, 4000], 0.0),
])
def test_stalled_seconds(counts, stalled):
    assert stats.stalled_seconds(counts, 0.25) == stalled


def test_cpu_seconds_from_proc_stat_counts_user_system_and_children():
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime ...; a command name with spaces and a ')' in it
    stat = "4242 (python -m (x) y) S 1 4242 4242 0 -1 4194304 10 0 0 0 250 50 7 3 20 0 4"
    assert stats.cpu_seconds(stat, 100) == pytest.approx(3.1)


def test_cpu_per_1k_and_workers_for_a_rate():
    assert stats.cpu_per_1k(2.0, 8000) == 0.25
    assert stats.cpu_per_1k(1.0, 0) is None
    # 0.25 CPU-s per 1k: 10,000 events/s keeps 2.5 cores busy, at 70% each 4 workers
    assert stats.workers_for(10_000, 0.25) == 4
    assert stats.workers_for(10_000, 0.25, busy=1.0) == 3
    assert stats.workers_for(1, 0.25) == 1


def test_realistic_history_is_keyed_by_its_best_identifier():
    records = realistic(30, days=3)
    assert [r.seq for r in records] == list(range(len(records)))
    assert {r.topic for r in records} <= {"clickstream", "email", "social"}
    for r in records:
        body = orjson.loads(r.value)
        best = (body.get("userId") or body.get("anonymousId") or body.get("email")
                or body.get("handle"))
        assert r.key == best.encode()
    assert any(orjson.loads(r.value).get("type") == "identify" for r in records)
    assert realistic(30, days=3) == records  # seeded


def _kind(r) -> str:
    body = orjson.loads(r.value)
    if r.topic in ("email", "social"):
        return r.topic
    if body["type"] == "track":
        return {"Product Viewed": "product_viewed", "Product Added": "product_added",
                "Order Completed": "order"}[body["event"]]
    return body["type"]


def _time(r) -> float:
    from datetime import datetime

    return datetime.fromisoformat(orjson.loads(r.value)["timestamp"]).timestamp()


def test_worker_share_of_a_phase_from_the_workers_own_histogram():
    metrics = Metrics()
    port = free_port()
    metrics.serve(port)
    url = f"http://127.0.0.1:{port}/metrics"
    metrics.record_to_action.observe(0.2)  # before the phase: not the phase's
    phase = Phase(rate=100.0, seconds=1.0)
    phase.worker_before = buckets([url], WORKER_HISTOGRAM)
    for seconds in (0.002, 0.004, 0.03, 0.3):
        metrics.record_to_action.observe(seconds)
    phase.worker_after = buckets([url], WORKER_HISTOGRAM)
    shares = phase.summary()["worker_record_to_action"]
    assert shares["0.005"] == 0.5
    assert shares["0.05"] == 0.75
    assert shares["0.5"] == shares["+Inf"] == 1.0
