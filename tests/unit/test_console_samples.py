"""The Kafka console's figures: the samples of several workers summed into one set."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from engine.console.kafka_source import summed
from engine.console.source import Sample, samples_of
from engine.obs.metrics import Metrics


def worker(events: dict[str, int], latency: list[float]) -> list[Sample]:
    m = Metrics()
    m.events.update(events)
    for seconds in latency:
        m.decision_latency.observe(seconds)
    m.timers_pending = 2
    return samples_of(m.registry.collect())


def by_key(samples: list[Sample]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, s.labels): s.value for s in samples}


def test_the_same_series_of_two_workers_add_up_and_the_others_stay_apart() -> None:
    got = by_key(summed([worker({"clickstream": 3}, [0.001]),
                         worker({"clickstream": 4, "email-events": 1}, [0.001, 0.5])]))
    assert got["kairos_events_consumed_total", (("topic", "clickstream"),)] == 7.0
    assert got["kairos_events_consumed_total", (("topic", "email-events"),)] == 1.0
    assert got["kairos_decision_latency_seconds_count", ()] == 3.0
    assert got["kairos_decision_latency_seconds_sum", ()] == 0.502
    assert got["kairos_decision_latency_seconds_bucket", (("le", "+Inf"),)] == 3.0
    assert got["kairos_timers_pending", ()] == 4.0  # a gauge: the group's total


def test_scraped_text_sums_like_the_registry_and_created_timestamps_are_dropped() -> None:
    text = ("# TYPE kairos_actions counter\n"
            'kairos_actions_total{rule="r",channel="email"} 2.0\n'
            'kairos_actions_created{rule="r",channel="email"} 1.79e9\n')
    one = samples_of(text_string_to_metric_families(text))
    got = summed([one, one, []])
    assert got == [Sample("kairos_actions_total", (("channel", "email"), ("rule", "r")), 4.0)]


def test_a_last_fired_time_is_the_latest_of_the_workers_not_their_sum() -> None:
    def fired(at: float) -> list[Sample]:
        return [Sample("kairos_rule_last_fired_timestamp_seconds", (("rule", "r"),), at)]

    got = by_key(summed([fired(1.79e9), fired(1.79e9 + 60)]))
    assert got["kairos_rule_last_fired_timestamp_seconds", (("rule", "r"),)] == 1.79e9 + 60
