"""`kairos rules check --events`: the author's own events reach code paths generated journeys
never do; failures name file and line, silent triggers are warnings, and `rules list` shows
every rule with the failing ones marked."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine.cli import main
from engine.ops.rules_check import check
from tests.helpers import rules_dir

PRICE_DROP = '''
from engine.sdk import Context, Proposal, on, rule


@rule("price-drop", triggers=[on("track", "Product Viewed"), on("track", "Price Dropped")])
def price_drop(ctx: Context) -> Proposal | None:
    price = ctx.event.properties.get("price")
    if price is None:
        return None
    share = 100 / (price - ctx.event.properties["was"])
    return Proposal(action=f"price-drop-{share:.0f}", channels=("mail",))
'''

VIP = """
[[rule]]
id = "vip"
triggers = ["track:Order Completed"]
when = "double(event.properties.revenue) > 500.0"
  [[rule.propose]]
  action = "vip-thanks"
  channels = ["crm"]
"""


def sample(tmp_path: Path, *events: dict[str, object]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps({
        "type": "track", "userId": "u1", "messageId": f"m{i}",
        "timestamp": "2026-09-21T10:00:00Z", **e}) + b"\n" for i, e in enumerate(events)))
    return path


def test_the_authors_events_reach_what_generated_journeys_miss(tmp_path: Path) -> None:
    d = rules_dir(tmp_path, price__py=PRICE_DROP)
    assert not [p for p in check(d).problems if "raised" in p]  # no generated event has a price
    events = sample(tmp_path,
                    {"event": "Product Viewed", "properties": {"price": 8, "was": 8}},
                    {"event": "Product Viewed", "properties": {"price": 9, "was": 10}})
    checked = check(d, events=events)
    assert ("price.py:10: rule 'price-drop' raised ZeroDivisionError: division by zero "
            f"(1 times in a dry run over {events})") in checked.problems
    assert checked.warnings == [
        f"price.py: rule 'price-drop': trigger track:Price Dropped matched no event in {events}"]


def test_an_unknown_channel_in_a_proposal_fails_with_its_line(tmp_path: Path) -> None:
    d = rules_dir(tmp_path, price__py=PRICE_DROP)
    events = sample(tmp_path, {"event": "Product Viewed", "properties": {"price": 9, "was": 10}})
    [problem] = [p for p in check(d, events=events).problems if "raised" in p]
    assert problem.startswith("price.py:11: rule 'price-drop' raised ValueError: proposal "
                              "'price-drop--100': unknown channel 'mail'")


def test_a_cel_field_error_names_the_field_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                 ) -> None:
    d = rules_dir(tmp_path, vip__toml=VIP)
    events = sample(tmp_path, {"event": "Order Completed", "properties": {"currency": "EUR"}})
    assert main(["rules", "check", str(d), "--events", str(events)]) == 1
    err = capsys.readouterr().err
    assert ("kairos rules check: vip.toml: rule 'vip' raised RuleError: $.rule[0].when: "
            "event.properties.revenue is missing on this event: guard it with "
            "has(event.properties.revenue)") in err


def test_rules_list_shows_every_rule_and_marks_the_failing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = ("from engine.sdk import Context, on, rule\n\n\n"
            "@rule('fine', triggers=[on('track')])\ndef fine(ctx: Context) -> None:\n"
            "    return None\n")
    d = rules_dir(tmp_path, price__py=PRICE_DROP, good__py=good, typo__py="def broken(:\n")
    events = sample(tmp_path, {"event": "Product Viewed", "properties": {"price": 8, "was": 8}})
    assert main(["rules", "list", str(d), "--events", str(events)]) == 1
    out, err = capsys.readouterr()
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1] != " "}
    assert set(rows) == {"fine", "price-drop", "typo.py"}
    assert "FAILING" in rows["price-drop"] and "FAILING" in rows["typo.py"]
    assert "enabled" in rows["fine"] and "does not load" in rows["typo.py"]
    assert "kairos rules list: typo.py:1: syntax error: invalid syntax" in err
    assert "price.py:10: rule 'price-drop' raised ZeroDivisionError" in err
