"""Declarative TOML/YAML rules with CEL conditions compile to real rules, or say precisely why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import RuleError, RuleFailed
from engine.sdk.ruleset import RuleSet
from engine.testing import Scenario

VIP = """
[[rule]]
id = "vip-big-order"
version = 3
description = "a big order from a repeat customer"
triggers = ["track:Order Completed"]
when = "double(event.properties.revenue) > 500.0 && state.lifecycle == 'repeat'"
set_stage = "decision"

  [[rule.propose]]
  action = "vip-thank-you"
  channels = ["crm", "email"]
  priority = 80
  ttl_days = 2
  payload = { script = "vip" }
"""

PRICING = """
rule:
  - id: pricing-twice
    triggers: ["page:/pricing"]
    when: "count_within('page:/pricing', 7 * 86400) >= 2"
    propose:
      - action: sales-call
        channels: [crm]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_toml_rule_fires_only_when_its_cel_condition_holds(tmp_path: Path) -> None:
    s = Scenario(write(tmp_path, "vip.toml", VIP))
    assert s.track("u1", "Order Completed", properties={"revenue": 900}) == []  # first: customer
    assert s.track("u1", "Order Completed", properties={"revenue": 100}) == []  # too small
    [action] = s.track("u1", "Order Completed", properties={"revenue": 900})
    assert (action.rule_id, action.rule_version, action.channel) == ("vip-big-order", 3, "crm")
    assert action.payload == {"script": "vip"}
    assert s.contact("u1").stage == "decision"


def test_yaml_rule_uses_sliding_window_counts(tmp_path: Path) -> None:
    s = Scenario(write(tmp_path, "pricing.yaml", PRICING))
    assert s.page("u1", "/pricing") == []
    s.advance(days=8)
    assert s.page("u1", "/pricing") == []  # the first visit fell out of the 7-day window
    s.advance(days=2)
    [action] = s.page("u1", "/pricing")
    assert action.action == "sales-call"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (VIP.replace("&& state", "&& && state"), r"vip.toml: rule 'vip-big-order' \(\$\.rule\[0\]\.when\): Failed to parse"),
        (VIP.replace("double(event", "lookup(event"), r"unknown function\(s\) \['lookup'\]"),
        (VIP.replace("state.lifecycle", "profile.lifecycle"), r"unknown variable\(s\) \['profile'\]"),
        (VIP.replace('"crm", "email"', '"crm", "fax"'), r"\$\.rule\[0\]\.propose\[0\]\): .*unknown channel 'fax'"),
        (VIP.replace("priority = 80", 'priority = "high"'), r"vip.toml: Expected `float`, got `str` - at `\$\.rule\[0\]\.propose\[0\]\.priority`"),
        (VIP.replace('set_stage = "decision"', 'set_stage = "bored"'), r"set_stage\): 'bored' is not one of"),
        (VIP.replace("version = 3", "versoin = 3"), r"unknown field `versoin`"),
        (VIP.replace('triggers = ["track:Order Completed"]', 'triggers = ["shop:visit"]'), r"unknown event kind 'shop'"),
    ],
)
def test_errors_name_file_rule_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        RuleSet.load(write(tmp_path, "vip.toml", text))


def test_a_condition_that_is_not_boolean_is_a_rule_error_not_a_crash(tmp_path: Path) -> None:
    s = Scenario(write(tmp_path, "vip.toml", VIP.replace(
        "double(event.properties.revenue) > 500.0 && state.lifecycle == 'repeat'", "42")),
        rule_errors="record")
    assert s.track("u1", "Order Completed", properties={"revenue": 900}) == []
    assert s.runtime.pipeline.rule_failures["vip-big-order"].startswith("TypeError")


def test_a_missing_field_names_its_path_and_the_guard(tmp_path: Path) -> None:
    unguarded = VIP.replace(" && state.lifecycle == 'repeat'", "")
    s = Scenario(write(tmp_path, "vip.toml", unguarded))
    with pytest.raises(RuleFailed, match=r"vip\.toml: rule 'vip-big-order' raised RuleError: "
                       r"\$\.rule\[0\]\.when: event\.properties\.revenue is missing on this "
                       r"event: guard it with has\(event\.properties\.revenue\)"):
        s.track("u1", "Order Completed", currency="EUR")
    guarded = unguarded.replace("double(event.properties.revenue) > 500.0",
                          "has(event.properties.revenue) && double(event.properties.revenue) > 500.0")
    assert Scenario(write(tmp_path, "vip.toml", guarded)).track("u1", "Order Completed") == []
