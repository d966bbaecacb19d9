"""`kairos generate --realistic`: people over many days, with the traps a customer view meets."""

from __future__ import annotations

import collections
import itertools
from pathlib import Path

import orjson

from engine.model.events import decode
from engine.ops.realistic import RealisticGenerator


def test_the_history_is_deterministic_time_ordered_and_full_of_traps() -> None:
    history = list(RealisticGenerator(80, seed=5))
    assert [g.value for g in history] == [g.value for g in RealisticGenerator(80, seed=5)]
    assert [g.value for g in history] != [g.value for g in RealisticGenerator(80, seed=6)]
    assert all(a.time <= b.time for a, b in itertools.pairwise(history))
    raw = [orjson.loads(g.value) for g in history]
    users_per_device: dict[str, set[str]] = collections.defaultdict(set)
    days_per_user: dict[str, set[int]] = collections.defaultdict(set)
    emails: dict[str, str] = {}
    for g, obj in zip(history, raw, strict=True):
        if "userId" in obj:
            users_per_device[obj["anonymousId"]].add(obj["userId"])
            days_per_user[obj["userId"]].add(int(g.time // 86_400))
        if obj.get("type") == "identify" and "email" in obj.get("traits", {}):
            emails[obj["userId"]] = obj["traits"]["email"]
    assert any(len(users) == 2 for users in users_per_device.values())  # shared devices
    assert sum(len(days) >= 5 for days in days_per_user.values()) > 20  # many days each
    assert set(days_per_user) - set(emails)  # signed up, never gave an email
    kinds = collections.Counter(obj.get("event") for obj in raw)
    for kind in ("unsubscribe", "group_unsubscribe", "spamreport", "bounce", "Order Completed",
                 "Product Added", "Products Searched"):
        assert kinds[kind] > 0, kind
    assert any(obj.get("asm_group_id") for obj in raw if obj.get("event") == "group_unsubscribe")
    assert any("consent" in obj.get("context", {}) for obj in raw)
    answers = [v for obj in raw for v in obj.get("traits", {}).get("consent", {}).values()]
    assert False in answers and True in answers  # consent given, and withdrawn, in traits
    decoded = [decode(g.source, g.value) for g in history if b"group_resubscribe" not in g.value]
    assert len(decoded) == len(history) - kinds["group_resubscribe"]


def test_timers_of_every_family_come_due_over_a_returning_customers_silence(tmp_path: Path) -> None:
    """The long timers (win-back at 60 days, the second-purchase nudge at 30, the first
    purchase's anniversary at a year) fire only because some people first shopped months
    before the window and went quiet: the replay must see each of them act."""
    from engine.ops.replay import replay
    from engine.sdk.ruleset import RuleSet

    history = tmp_path / "history.jsonl"
    generated = list(RealisticGenerator(400, seed=7, days=7))
    history.write_bytes(b"".join(g.value + b"\n" for g in generated))
    assert generated[0].time < generated[-1].time - 365 * 86_400  # over a year of history
    report = replay(history, RuleSet.load("rules"))
    for timed in ("win-back", "second-purchase-nudge", "first-purchase-anniversary",
                  "post-purchase-follow-up", "cart-abandoned", "lead-nurture"):
        assert report.fires[timed] > 0, timed
