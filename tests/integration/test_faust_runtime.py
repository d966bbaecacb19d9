"""`kairos worker --runtime faust` on the real broker: journeys, dead letters, a crash, a shared
group, state moving between the runtimes, and Kairos mounted in a Faust app of one's own."""

from __future__ import annotations

import collections
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.core.identity import contact_id_for
from engine.model import actions as action_codec
from engine.model import deadletter
from engine.model.actions import Action
from engine.testing.kafka import ROOT, Worker, consume, produce
from tests.integration.journey import EXPECTED, T0, phase_one, phase_two, segment

pytestmark = pytest.mark.kafka
FAST = {"KAIROS_SESSION_TIMEOUT": "6"}  # a worker that leaves hands its partitions on quickly


def send(w: Worker, items: list[tuple[str, bytes, bytes]]) -> None:
    produce(w.bootstrap, [(w.topics[src], key, value) for src, key, value in items])


def actions_of(w: Worker, until: Callable[[list[Action]], bool],
               timeout: float = 60.0) -> list[Action]:
    values = consume(w.bootstrap, w.topics["actions"],
                     lambda vs: until([action_codec.decode(v) for v in vs]), timeout)
    return [action_codec.decode(v) for v in values]


def triggers(actions: list[Action]) -> set[str]:
    return {a.trigger_event_id for a in actions}


def ready(w: Worker) -> dict[str, object]:
    url = f"http://127.0.0.1:{w.env['KAIROS_WEB_PORT']}/ready"
    try:
        body: dict[str, object] = json.loads(urllib.request.urlopen(url, timeout=5).read())
    except urllib.error.HTTPError as exc:  # 503: not ready, the same body
        body = json.loads(exc.read())
    return body


def test_a_journey_and_garbage_on_the_faust_runtime(kafka_bootstrap: str, tmp_path: Path) -> None:
    w = Worker(kafka_bootstrap, tmp_path, runtime="faust").start()
    try:
        send(w, [*phase_one("fa"), ("clickstream", b"bad", b"{not json"), *phase_two("fa")])
        got = actions_of(w, lambda acts: {f"fa-{s}" for s in EXPECTED} <= triggers(acts))
        letters = [deadletter.decode(v)
                   for v in consume(w.bootstrap, w.topics["dead"], lambda vs: len(vs) >= 1)]
        assert ready(w)["ready"] is True
    finally:
        w.stop()
    decided = {a.trigger_event_id.removeprefix("fa-"): (a.rule_id, a.channel, a.action)
               for a in got}
    assert decided == EXPECTED
    assert {a.contact_id for a in got} == {contact_id_for("user:user-fa")}  # one person
    [letter] = letters
    assert letter.reason.startswith("invalid JSON") and letter.value == "{not json"
    assert letter.topic == w.topics["clickstream"] and letter.key == "bad"


def burst(tag: str, users: int, purchases: int) -> tuple[list[tuple[str, bytes, bytes]],
                                                           set[str]]:
    """Sign-ups, then purchases across categories: the items, and the purchase ids that must
    each fire a first purchase in their category."""
    items = [("clickstream", f"{tag}-user-{u}".encode(), segment(
        "identify", f"{tag}-id-{u}", T0 - 1, userId=f"{tag}-user-{u}",
        traits={"email": f"{tag}{u}@example.com"})) for u in range(users)]
    firsts: dict[tuple[int, int], str] = {}
    for i in range(purchases):
        items.append(("clickstream", f"{tag}-user-{i % users}".encode(), segment(
            "track", f"{tag}-{i}", T0 + i, userId=f"{tag}-user-{i % users}",
            event="Order Completed", properties={"products": [{"category": f"cat{i % 7}"}]})))
        firsts.setdefault((i % users, i % 7), f"{tag}-{i}")
    return items, set(firsts.values())


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_kill_minus_nine_then_restart_loses_nothing(kafka_bootstrap: str, tmp_path: Path,
                                                    guarantee: str) -> None:
    """Killed mid-burst and restarted: every first purchase is decided, and a re-delivered
    event repeats an action only under the same id, with the same decision. Under exactly-once
    nothing repeats: an event's outputs go in the transaction that commits its offset, which
    the killed worker's successor aborts (docs/operations.md: what a commit in the middle of a
    batch would still let through)."""
    w = Worker(kafka_bootstrap, tmp_path, runtime="faust",
               KAIROS_PROCESSING_GUARANTEE=guarantee, **FAST).start()
    items, wanted = burst("k9", 30, 240)
    try:
        send(w, items)
        actions_of(w, lambda acts: len(acts) >= 10)  # mid-run: some decided, most not yet
        w.kill9()
        w.start()
        got = actions_of(w, lambda acts: wanted <= triggers(acts), timeout=90)
    finally:
        w.stop()
    assert wanted <= triggers(got), f"missing {sorted(wanted - triggers(got))[:10]}"
    by_id = collections.defaultdict(set)
    for a in got:  # re-decided after the crash, an action is the same but for its decided_at
        by_id[a.action_id].add((a.rule_id, a.trigger_event_id, a.contact_id, a.channel))
    assert all(len(decisions) == 1 for decisions in by_id.values())
    if guarantee == "exactly_once":
        assert len(got) == len(by_id), "an action committed twice"
    assert {a.trigger_event_id for a in got if a.rule_id == "first-purchase-in-category"} \
        <= wanted


def shared(a: Worker, b: Worker, timeout: float = 60.0) -> list[set[int]]:
    """The contacts partitions each worker owns once the group settled on both (a busy machine
    can take more than one rebalance to get there)."""
    deadline = time.monotonic() + timeout
    while True:
        owned = [set(ready(w)["partitions"]["contacts"]) for w in (a, b)]  # type: ignore[index]
        if (owned[0] and owned[1]) or time.monotonic() > deadline:
            return owned
        time.sleep(0.5)


def test_two_faust_workers_share_the_partitions_and_survive_one_leaving(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    a = Worker(kafka_bootstrap, tmp_path / "a", runtime="faust", **FAST).start()
    b = Worker(kafka_bootstrap, tmp_path / "b", prefix=a.prefix, runtime="faust", **FAST)
    try:
        b.start()
        a.wait_for_log("Ready", 60)  # a's second assignment: the group has both
        owned = shared(a, b)
        assert owned[0] and owned[1] and owned[0].isdisjoint(owned[1]), owned
        assert owned[0] | owned[1] == {0, 1, 2, 3}
        first, wanted_first = burst("tw", 12, 60)
        send(a, first)
        actions_of(a, lambda acts: wanted_first <= triggers(acts))
        b.stop()  # leaves the group: a takes every partition over
        second = [("clickstream", f"tw-user-{u}".encode(), segment(
            "track", f"tw-late-{u}", T0 + 1000 + u, userId=f"tw-user-{u}",
            event="Order Completed", properties={"products": [{"category": "late"}]}))
            for u in range(12)]
        send(a, second)
        late = {f"tw-late-{u}" for u in range(12)}
        got = actions_of(a, lambda acts: late <= triggers(acts), timeout=90)
    finally:
        b.stop()
        a.stop()
    assert wanted_first | late <= triggers(got)
    # the contacts' state moved with their partitions: a category seen before b left is not
    # a first purchase again after
    assert {a.trigger_event_id for a in got if a.rule_id == "first-purchase-in-category"} \
        <= wanted_first | late


def test_state_moves_between_the_batch_and_the_faust_runtime(kafka_bootstrap: str,
                                                              tmp_path: Path) -> None:
    """Same app and topics, fresh local directories: each runtime restores the other's
    changelogs and goes on with the same contacts."""
    batch = Worker(kafka_bootstrap, tmp_path / "batch", **FAST).start()
    try:
        send(batch, phase_one("mv"))
        actions_of(batch, lambda acts: "mv-o1" in triggers(acts))
    finally:
        batch.stop()
    faust = Worker(kafka_bootstrap, tmp_path / "faust", prefix=batch.prefix, runtime="faust",
                   **FAST).start()
    baby_again = ("clickstream", b"user-mv", segment(
        "track", "mv-o2", T0 + 200, userId="user-mv", event="Order Completed",
        properties={"products": [{"category": "baby"}]}))
    try:
        send(faust, [baby_again, *phase_two("mv")])
        actions_of(faust, lambda acts: {"mv-e1", "mv-s1"} <= triggers(acts))
    finally:
        faust.stop()
    back = Worker(kafka_bootstrap, tmp_path / "back", prefix=batch.prefix, **FAST).start()
    try:
        send(back, [("clickstream", b"user-mv", segment(
            "track", "mv-o3", T0 + 1200, userId="user-mv", event="Order Completed",
            properties={"products": [{"category": "books"}]}))])
        got = actions_of(back, lambda acts: "mv-o3" in triggers(acts))
    finally:
        back.stop()
    assert {a.contact_id for a in got} == {contact_id_for("user:user-mv")}
    assert {"mv-o1", "mv-e1", "mv-s1", "mv-o3"} <= triggers(got)
    assert "mv-o2" not in triggers(got)  # the Faust runtime knew the first baby purchase


def test_kairos_mounted_in_a_faust_app_of_ones_own(kafka_bootstrap: str, tmp_path: Path) -> None:
    example = ROOT / "docs" / "examples" / "faust_app.py"
    w = Worker(kafka_bootstrap, tmp_path, command=[str(example), "worker", "-l", "info"],
               **FAST)
    w.env["PYTHONPATH"] = str(ROOT)
    w.start()
    try:
        send(w, phase_one("ex"))
        got = actions_of(w, lambda acts: "ex-o1" in triggers(acts))
        ids = {a.action_id for a in got}
        audit = consume(w.bootstrap, f"{w.topics['actions']}.audit",
                        lambda vs: ids <= {json.loads(v)["action_id"] for v in vs})
        health = urllib.request.urlopen(
            f"http://127.0.0.1:{w.env['KAIROS_WEB_PORT']}/kairos/health", timeout=5).read()
    finally:
        w.stop()
    assert ids <= {json.loads(v)["action_id"] for v in audit}  # the shop's own agent ran
    assert json.loads(health) == {"status": "ok"}
