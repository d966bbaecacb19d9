"""`kairos worker` against the real Kafka broker: journeys, dead letters, restarts, parity."""

from __future__ import annotations

import collections
import re
import shutil
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import orjson
import pytest

from engine.core.identity import contact_id_for
from engine.core.policy import Policy
from engine.model import actions as action_codec
from engine.model import deadletter
from engine.ops.generator import Generated, JourneyGenerator
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet
from engine.testing.kafka import UNLIMITED_POLICY, Worker, consume, produce
from tests.helpers import ROOT
from tests.integration.journey import EXPECTED, T0, email_event, phase_one, phase_two, segment
from tests.integration.timer_rule import timer_rules

pytestmark = pytest.mark.kafka


def send(w: Worker, items: list[tuple[str, bytes, bytes]]) -> None:
    produce(w.bootstrap, [(w.topics[src], key, value) for src, key, value in items])


def actions_of(w: Worker, until: object, timeout: float = 60.0) -> list[action_codec.Action]:
    def done(values: list[bytes]) -> bool:
        return until([action_codec.decode(v) for v in values])  # type: ignore[operator]

    values = consume(w.bootstrap, w.topics["actions"], done, timeout)
    return [action_codec.decode(v) for v in values]


def triggers(actions: list[action_codec.Action]) -> set[str]:
    return {a.trigger_event_id for a in actions}


def test_a_journey_across_three_topics_decides_its_actions(worker: Worker) -> None:
    send(worker, phase_one("ada"))
    first = actions_of(worker, lambda acts: "ada-o1" in triggers(acts))
    assert "ada-o1" in triggers(first), worker.log_tail()
    send(worker, phase_two("ada"))
    wanted = {f"ada-{k}" for k in EXPECTED}
    got = actions_of(worker, lambda acts: wanted <= triggers(acts))
    by_trigger = {a.trigger_event_id: a for a in got if a.trigger_event_id.startswith("ada-")}
    assert set(by_trigger) == wanted, worker.log_tail()
    for suffix, (rule, channel, action) in EXPECTED.items():
        a = by_trigger[f"ada-{suffix}"]
        assert (a.rule_id, a.channel, a.action) == (rule, channel, action)
        assert a.rule_version == 1 and a.action_id.startswith("a") and a.expires_at > a.decided_at
    # The email-only and handle-only events reached the same contact the identify linked them to.
    assert by_trigger["ada-e1"].contact_id == by_trigger["ada-s1"].contact_id


def test_bad_input_is_dead_lettered_and_good_input_around_it_still_decided(
    worker: Worker,
) -> None:
    good = phase_one("bob")
    bad = [
        ("clickstream", b"k", b"\x00\xffgarbage"),
        ("email", b"k", b'{"event": "open", "email": "x@example.com", "timest'),
        ("social", b"k", orjson.dumps({"event_id": "s", "network": "twitter", "action": "like",
                                        "handle": "@x", "timestamp": {"not": "a time"}})),
        ("clickstream", b"k", segment("track", "bad-1", T0, userId="u", event=42)),
    ]
    send(worker, [good[0], bad[0], good[1], bad[1], good[2], bad[2], bad[3], good[3]])
    got = actions_of(worker, lambda acts: "bob-o1" in triggers(acts))
    assert "bob-o1" in triggers(got), worker.log_tail()
    letters = [
        deadletter.decode(v)
        for v in consume(worker.bootstrap, worker.topics["dead"], lambda vs: len(vs) >= 4)
    ]
    assert len(letters) == 4
    reasons = {ltr.topic: [] for ltr in letters}  # type: dict[str | None, list[str]]
    for ltr in letters:
        reasons[ltr.topic].append(ltr.reason)
        assert ltr.partition is not None and ltr.offset is not None
    assert any("invalid JSON" in r for r in reasons[worker.topics["clickstream"]])
    assert any("`$.event`" in r for r in reasons[worker.topics["clickstream"]])
    assert any("truncated" in r for r in reasons[worker.topics["email"]])
    assert any("`$.timestamp`" in r for r in reasons[worker.topics["social"]])
    originals = {ltr.original() for ltr in letters}
    assert {b for _, _, b in bad} == originals
    metrics = urllib.request.urlopen(worker.metrics_url(), timeout=5).read().decode()
    assert 'kairos_dead_letters_total{reason="invalid JSON"} 2.0' in metrics
    assert 'kairos_dead_letters_total{reason="schema violation"} 2.0' in metrics
    assert "kairos_decision_latency_seconds_count" in metrics
    timed = re.search(r"^kairos_record_to_action_seconds_count (\S+)$", metrics, re.MULTILINE)
    assert timed and float(timed.group(1)) > 0  # the actions above, timed from their records
    written = re.search(r"^kairos_contact_state_bytes_count (\S+)$", metrics, re.MULTILINE)
    assert written and float(written.group(1)) > 0  # states are measured where encoded
    assert 'kairos_actions_total{channel="email",rule="first-baby-purchase"}' in metrics
    assert 'kairos_suppressions_total{channel="",reason="outranked",rule="first-purchase-in-category"}' in metrics


@pytest.mark.parametrize(("runtime", "guarantee"), [
    ("batch", "at_least_once"), ("batch", "exactly_once"), ("faust", "at_least_once")])
def test_a_shadow_rule_writes_its_would_be_actions_to_the_shadow_topic_only(
    kafka_bootstrap: str, tmp_path: Path, runtime: str, guarantee: str
) -> None:
    """Under exactly-once the shadow actions commit in the transaction of their event: the
    topic is read `read_committed`."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("__pycache__"))
    (rules / "modes.txt").write_text("first-baby-purchase shadow\n")
    w = Worker(kafka_bootstrap, tmp_path / "data", runtime=runtime,
               KAIROS_RULES_DIR=str(rules), KAIROS_PROCESSING_GUARANTEE=guarantee).start()
    try:
        send(w, phase_one("sam"))
        shadowed = [action_codec.decode(v) for v in consume(
            w.bootstrap, w.topics["shadow"], lambda vs: any(b"sam-o1" in v for v in vs))]
        live = actions_of(w, lambda acts: "sam-o1" in triggers(acts))
        metrics = urllib.request.urlopen(w.metrics_url(), timeout=5).read().decode()
    finally:
        w.stop()
    [would] = [a for a in shadowed if a.trigger_event_id == "sam-o1"]
    assert (would.rule_id, would.channel, would.action) == EXPECTED["o1"], w.log_tail()
    assert all(a.rule_id != "first-baby-purchase" for a in live)
    # the live rule it outranked before decides now: a shadow candidate never stops a live one
    [decided] = [a for a in live if a.trigger_event_id == "sam-o1"]
    assert decided.rule_id == "first-purchase-in-category"
    assert 'kairos_shadow_actions_total{channel="email",rule="first-baby-purchase"} 1.0' in metrics
    live_counts = re.findall(r"^kairos_(?:actions|candidates|suppressions)_total\{.*\}",
                             metrics, re.MULTILINE)
    assert live_counts and not [c for c in live_counts if "first-baby-purchase" in c]


def test_state_survives_kill_minus_nine_and_no_event_is_skipped(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # The killed process cannot leave the group: its restart waits out the session timeout.
    w = Worker(kafka_bootstrap, tmp_path, KAIROS_SESSION_TIMEOUT="6").start()
    try:
        send(w, phase_one("cy"))
        before = actions_of(w, lambda acts: "cy-o1" in triggers(acts))
        assert "cy-o1" in triggers(before)
        # Mid-stream: a burst of purchases by many contacts (who gave their address first),
        # killed while it is being decided.
        send(w, [("clickstream", f"burst-user-{u}".encode(), segment(
            "identify", f"burst-id-{u}", T0 - 1, userId=f"burst-user-{u}",
            traits={"email": f"burst{u}@example.com"})) for u in range(50)])
        burst = [
            ("clickstream", f"u{i}".encode(), segment(
                "track", f"burst-{i}", T0 + i, userId=f"burst-user-{i % 50}",
                event="Order Completed",
                properties={"products": [{"category": f"cat{i % 7}"}]}))
            for i in range(400)
        ]
        send(w, burst)
        w.kill9()
        w.start()
        user = b"user-cy"
        send(w, [
            ("clickstream", user, segment("track", "cy-o2", T0 + 200, userId="user-cy",
             event="Order Completed", properties={"products": [{"category": "baby"}]})),
            ("clickstream", user, segment("track", "cy-o3", T0 + 300, userId="user-cy",
             event="Order Completed", properties={"products": [{"category": "books"}]})),
        ])
        # Every first purchase per (burst user, category) must be decided exactly once by id.
        firsts: dict[tuple[int, int], str] = {}
        for i in range(400):
            firsts.setdefault((i % 50, i % 7), f"burst-{i}")
        wanted = set(firsts.values()) | {"cy-o3"}
        got = actions_of(w, lambda acts: wanted <= triggers(acts), timeout=90)
    finally:
        w.stop()
    seen = triggers(got)
    assert wanted <= seen, f"missing {sorted(wanted - seen)[:10]}\n{w.log_tail()}"
    # State from before the kill still decides: a second baby purchase is not a first one.
    assert "cy-o2" not in seen
    burst_fired = {t for t in seen if t.startswith("burst-")}
    assert burst_fired == set(firsts.values())
    ids = collections.Counter(a.action_id for a in got)
    by_id = {a.action_id: a for a in got}
    # A redelivered event may re-emit an action, but always with the same id and content.
    for aid in ids:
        assert by_id[aid].trigger_event_id in wanted | {"cy-o1"}


def withdrawals(journeys: list[Generated]) -> list[Generated]:
    """The journeys with an unsubscribe or a spam report right after every third sign-up."""
    out, signups = [], 0
    for g in journeys:
        out.append(g)
        traits = msgspec.json.decode(g.value).get("traits", {})
        if "email" in traits:
            signups += 1
            if signups % 3 == 0:
                kind = "unsubscribe" if signups % 2 else "spamreport"
                out.append(Generated(g.time, "email", email_event(
                    kind, f"withdraw-{signups}", traits["email"], g.time)))
    return out


def quiet_now_in_europe(path: Path) -> Path:
    """The unlimited policy with email quiet hours in force now in London and Paris, ending
    hours from now, and not in force in New York or Tokyo."""
    london = datetime.now(ZoneInfo("Europe/London"))
    minute = london.hour * 60 + london.minute
    start, end = (f"{m // 60:02d}:{m % 60:02d}" for m in
                  ((minute - 30) % 1440, (minute + 60 + 120) % 1440))
    unlimited = UNLIMITED_POLICY.read_text()
    off = ('[channels.email]\ndaily_cap = 1000000\nweekly_cap = 1000000\n'
           'quiet_hours = ["00:00", "00:00"]')
    assert off in unlimited
    path.write_text(unlimited.replace(off, off.replace('"00:00", "00:00"', f'"{start}", "{end}"')))
    return path


def suppressions(metrics_text: str) -> collections.Counter[tuple[str, str, str]]:
    """(rule, channel, reason) -> count, from a worker's /metrics."""
    found: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for m in re.finditer(r'^kairos_suppressions_total\{channel="([^"]*)",reason="([^"]*)",'
                         r'rule="([^"]*)"\} (\S+)$', metrics_text, re.MULTILINE):
        found[(m.group(3), m.group(1), m.group(2))] = int(float(m.group(4)))
    return found


def decide_embedded(
    journeys: list[Generated], rules: Path, policy: Path
) -> tuple[list[action_codec.Action], collections.Counter[tuple[str, str, str]]]:
    """The embedded runtime on the wall clock: actions, and suppressions by (rule, channel,
    reason), once the pings are due."""
    actions: list[action_codec.Action] = []
    pipeline = Pipeline(RuleSet.load(rules), Policy.load(policy))
    runtime = EmbeddedRuntime(pipeline, on_action=actions.append, clock="wall")
    for g in journeys:
        runtime.submit(g.value, g.source)
    deadline = time.time() + 6
    while time.time() < deadline:
        runtime.tick()
        time.sleep(0.1)
    return actions, pipeline.metrics.suppressions


def test_embedded_batch_and_faust_runtimes_decide_the_same_action_ids(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Same input, same actions by id and the same suppressions by reason, on the three
    runtimes (embedded, batch, Faust agents):
    unsubscribes and spam reports, quiet-hours deferrals and timers included.

    Both run on the wall clock: the Kafka worker has no other (its timers and quiet hours
    follow the machine's time), so the embedded runtime is put on it too. Deferred actions
    come back hours later, after the test: the deferrals themselves are compared (the
    `quiet_hours_deferred` suppressions, per rule and channel), not the actions they resume as.
    The shipped rules' timers are days away; a `ping` rule's 4-second timer is compared instead.
    """
    rules = timer_rules(tmp_path / "rules", after=4)
    shutil.copytree(ROOT / "rules", rules, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    policy_path = quiet_now_in_europe(tmp_path / "policy.toml")
    generated = list(JourneyGenerator(60, seed=11, bad_ratio=0))
    journeys = withdrawals(generated)
    embedded, held = decide_embedded(journeys, rules, policy_path)
    expected = {a.action_id for a in embedded}
    pings = [a for a in embedded if a.action == "ping"]
    assert len(expected) > 20 and len(pings) >= 30
    assert sum(n for (_, _, why), n in held.items() if why == "quiet_hours_deferred") >= 3
    assert any(a.channel == "email" for a in embedded)  # New York and Tokyo are awake
    unwithdrawn, held_unwithdrawn = decide_embedded(generated, rules, policy_path)
    assert len(unwithdrawn) > len(embedded)  # the withdrawals held actions back...
    # ...for want of consent or after spam reports (an unsubscribed contact's candidate may
    # also move to a channel it still allows, which is no suppression at all)
    withdrawn = ("no_consent", "hard_suppressed")
    assert (sum(n for k, n in held.items() if k[2] in withdrawn)
            > sum(n for k, n in held_unwithdrawn.items() if k[2] in withdrawn))

    # Kafka orders records within a partition only; across topics and partitions the workers
    # follow the records' timestamps, so they carry the events' order (as a collector's do).
    for runtime in ("batch", "faust"):
        got, metrics = decide_on_worker(kafka_bootstrap, tmp_path / runtime, runtime, journeys,
                                        expected, KAIROS_RULES_DIR=str(rules),
                                        KAIROS_POLICY=str(policy_path))
        assert {a.action_id for a in got} == expected, runtime
        assert suppressions(metrics) == +held, runtime


def decide_on_worker(kafka_bootstrap: str, data_dir: Path, runtime: str,
                     journeys: list[Generated], expected: set[str], **env: str
                     ) -> tuple[list[action_codec.Action], str]:
    """The journeys on fresh topics, then a worker of `runtime` started over them: its
    actions once every expected id is in, and its final metrics."""
    w = Worker(kafka_bootstrap, data_dir, runtime=runtime, **env)
    records, base = [], int(time.time() * 1000) - 60_000
    for g in journeys:
        obj = msgspec.json.decode(g.value)
        key = obj.get("userId") or obj.get("anonymousId") or obj.get("email") or obj["handle"]
        records.append((w.topics[g.source], key.encode(), g.value))
    produce(w.bootstrap, records, [base + i for i in range(len(records))])
    w.start()
    try:
        got = actions_of(w, lambda acts: expected <= {a.action_id for a in acts}, timeout=120)
        time.sleep(1)  # nothing more to come: the worker's metrics are final
        metrics = urllib.request.urlopen(w.metrics_url(), timeout=5).read().decode()
    finally:
        w.stop()
    return got, metrics


def test_a_shared_browser_follows_the_newest_login_on_the_worker(worker: Worker) -> None:
    """Ada looks at pricing once, Bea logs in on the same browser and looks twice: the sales
    task is Bea's, decided on her second view (a merged pair would have fired on her first)."""
    dev, ada, bea = "anon-shared", "user-ada-shared", "user-bea-shared"
    t0 = time.time() - 60  # the worker decides on its wall clock: "within a week" of now

    def page(mid: str, t: float) -> tuple[str, bytes, bytes]:
        return ("clickstream", dev.encode(), segment("page", mid, t, anonymousId=dev,
                                                     name="/pricing",
                                                     properties={"path": "/pricing"}))

    items = [
        ("clickstream", ada.encode(), segment("identify", "sh-a", t0, userId=ada,
                                              anonymousId=dev)),
        page("sh-p0", t0 + 10),
        ("clickstream", bea.encode(), segment("identify", "sh-b", t0 + 20, userId=bea,
                                              anonymousId=dev)),
        page("sh-p1", t0 + 30),
        page("sh-p2", t0 + 40),
    ]
    # Across partitions the worker follows the records' timestamps: they carry the order.
    base = int(t0 * 1000)
    produce(worker.bootstrap, [(worker.topics[src], k, v) for src, k, v in items],
            [base + i for i in range(len(items))])
    got = actions_of(worker, lambda acts: "sh-p2" in triggers(acts))
    mine = [a for a in got if a.trigger_event_id.startswith("sh-")]
    assert [(a.trigger_event_id, a.contact_id) for a in mine] == [
        ("sh-p2", contact_id_for(f"user:{bea}"))], worker.log_tail()
