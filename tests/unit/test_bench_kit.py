"""The benchmark kit's pure parts: traffic shape, latency arithmetic, the ramp's stop rule,
the summary. Nothing here is timed."""

from collections import Counter

import orjson
import pytest

from load_tests import report, stats
from load_tests.traffic import MIX, Traffic, sequence_of


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
    results = [
        {"scenario": "baseline", "events": 1000, "throughput_eps": 10_000,
         "passthrough_ratio": 1.0, "stopped_by": "events", "git_revision": "abc1234",
         "machine": {"cpus": 2, "cpu_model": "Test CPU", "python": "3.11"}},
        {"scenario": "steady", "rate": 1000.0, "events": 20_000, "throughput_eps": 1000,
         "passthrough_ratio": 0.1, "latency_ms": {"p50": 5.0, "p99": 20.0, "p99.9": 30.0,
                                                   "max": 40.0},
         "lag": {"max": 12}, "stopped_by": "events"},
        {"scenario": "ramp", "max_sustainable_rate": 2000.0, "target_p99_ms": 50.0,
         "steps": [{"rate": 1000.0, "ok": True}, {"rate": 2000.0, "ok": True},
                   {"rate": 3000.0, "ok": False}], "half_rate_p99_ms": 60.0},
        {"scenario": "scale", "one_worker_eps": 1000, "two_workers_eps": 1500,
         "speedup": 1.5, "throughput_eps": 1500},
        {"scenario": "peer", "error": "RuntimeError: peer app failed"},
    ]
    text = report.render_summary(results)
    assert "| steady | 1,000 | 20,000 | 1,000 | 10% | 5.0 | 20.0 | 30.0 | 40.0 | 12 | events |" \
        in text
    assert "steps 1,000, 2,000, 3,000 (failed)" in text
    assert "| p99 <= 25 ms at 1000 events/s | 20.0 ms at 1,000 events/s | yes |" in text
    assert "| p99 <= 50 ms at half the highest sustained rate | 60.0 ms | no |" in text
    assert "| 2 workers >= 1.6x one | x1.50 | no |" in text
    assert "| peer | - | - | - | - |" in text  # a failed scenario still has its row
    assert "- peer: RuntimeError: peer app failed" in text
    assert "revision abc1234" in text


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
