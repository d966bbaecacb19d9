"""The console's figures: rates from counters, quantiles from buckets, the health flags."""

import math

from engine.console.figures import overview, rule_rows
from engine.console.history import History, Snapshot, quantile
from engine.console.source import Sample
from engine.sdk.rule import Proposal, on, rule
from engine.sdk.ruleset import RuleSet


def s(name: str, value: float, **labels: str) -> Sample:
    return Sample(name, tuple(sorted(labels.items())), value)


@rule("welcome", triggers=[on("track", "Signed Up")])
def welcome(ctx):
    return Proposal("welcome", ("email",))


RULES = RuleSet([welcome])


def feed(history: History, points: list[tuple[float, float]], **extra: float) -> None:
    """Snapshots of the welcome rule's candidate counter at the given (time, count) points."""
    for at, count in points:
        history.add(Snapshot.of(at, [
            s("kairos_candidates_total", count, rule="welcome"),
            *(s(k, v, rule="welcome") for k, v in extra.items()),
        ]))


def test_rates_come_from_counter_growth_and_survive_a_restart():
    h = History()
    h.add(Snapshot.of(0.0, [s("kairos_events_consumed_total", 100, topic="clicks")]))
    h.add(Snapshot.of(10.0, [s("kairos_events_consumed_total", 150, topic="clicks")]))
    assert overview(h).events == {"clicks": (5.0, 150.0)}
    h.add(Snapshot.of(20.0, [s("kairos_events_consumed_total", 30, topic="clicks")]))  # restart
    rate, total = overview(h).events["clicks"]
    assert total == 30.0 and rate > 0


def test_quantile_interpolates_within_buckets_as_prometheus_does():
    buckets = {"0.001": 50.0, "0.01": 90.0, "0.1": 100.0, "+Inf": 100.0}
    assert math.isclose(quantile(0.5, buckets), 0.001)
    assert math.isclose(quantile(0.99, buckets), 0.01 + 0.09 * 0.9)
    assert quantile(0.99, {"+Inf": 0.0}) is None


def test_a_rule_far_below_its_own_rate_is_flagged_stopped_firing():
    h = History()
    # 60 fires an hour for six hours, then nothing for twenty minutes.
    feed(h, [(t * 300.0, t * 5.0) for t in range(73)])
    last = 72 * 5.0
    feed(h, [(72 * 300.0 + i * 2.0, last) for i in range(1, 601)])
    [row] = rule_rows(h, RULES)
    assert "stopped firing" in row.health


def test_a_rule_firing_as_usual_or_watched_too_briefly_is_not_flagged():
    steady = History()
    feed(steady, [(t * 300.0, t * 5.0) for t in range(80)])
    assert rule_rows(steady, RULES)[0].health == []
    brief = History()
    feed(brief, [(0.0, 100.0), (60.0, 100.0)])
    assert rule_rows(brief, RULES)[0].health == []


def test_erroring_and_suppressed_mostly():
    h = History()
    h.add(Snapshot.of(0.0, [s("kairos_candidates_total", 0, rule="welcome")]))
    h.add(Snapshot.of(600.0, [
        s("kairos_candidates_total", 100, rule="welcome"),
        s("kairos_rule_errors_total", 2, rule="welcome"),
        s("kairos_suppressions_total", 85, rule="welcome", channel="email", reason="no_consent"),
        s("kairos_suppressions_total", 10, rule="welcome", channel="email", reason="held_out"),
    ]))
    [row] = rule_rows(h, RULES)
    assert row.health == ["erroring", "suppressed mostly"]
    assert row.suppressions == {"no_consent": 85.0, "held_out": 10.0}
    assert math.isclose(row.fires_per_hour, 600.0)


def test_treated_against_control_with_an_interval_only_where_there_is_a_control_group():
    h = History()
    h.add(Snapshot.of(0.0, [
        s("kairos_rule_exposures_total", 400, rule="welcome", arm="treated"),
        s("kairos_rule_conversions_total", 40, rule="welcome", arm="treated"),
        s("kairos_rule_exposures_total", 100, rule="welcome", arm="control"),
        s("kairos_rule_conversions_total", 5, rule="welcome", arm="control"),
    ]))
    [row] = rule_rows(h, RULES)
    assert row.uplift is not None
    assert math.isclose(row.uplift.uplift, 0.05)
    low, high = row.uplift.interval()
    assert low < 0.05 < high
    bare = History()
    bare.add(Snapshot.of(0.0, [s("kairos_rule_exposures_total", 9, rule="welcome", arm="treated")]))
    assert rule_rows(bare, RULES)[0].uplift is None
