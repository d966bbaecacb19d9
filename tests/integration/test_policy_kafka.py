"""The contact policy on the real broker: consent and fallback, quiet-hours deferral, explain."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.model import actions as action_codec
from engine.testing.kafka import Worker, consume, produce
from tests.helpers import ROOT
from tests.integration.journey import T0, segment

pytestmark = pytest.mark.kafka

POLICY = """
global_daily_cap = 1000
global_weekly_cap = 1000
[channels.email]
daily_cap = 1000
weekly_cap = 1000
quiet_hours = ["{start}", "{end}"]
[channels.push]
daily_cap = 1000
weekly_cap = 1000
quiet_hours = ["00:00", "00:00"]
"""


def zone_at(local_hour: int) -> str:
    """A fixed-offset zone where the local hour is `local_hour` right now."""
    offset = (local_hour - datetime.now(UTC).hour + 12) % 24 - 12  # local = utc + offset
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT signs are inverted


def order(user: str, event_id: str, category: str) -> tuple[str, bytes, bytes]:
    return ("clickstream", user.encode(), segment(
        "track", event_id, T0, userId=user, event="Order Completed",
        properties={"products": [{"category": category}]}))


def test_consent_fallback_quiet_hours_and_explain_on_kafka(
    kafka_bootstrap: str, tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY.format(start="22:00", end="06:00"))
    w = Worker(kafka_bootstrap, tmp_path / "w", KAIROS_POLICY=str(policy)).start()
    try:
        produce(w.bootstrap, [(w.topics["clickstream"], k, v) for _, k, v in [
            ("clickstream", b"pat", segment("identify", "pat-id", T0, userId="pat",
                                             traits={"email": "pat@example.com",
                                                     "consent": {"email": False, "push": True}},
                                             context={"device": {"token": "tok-pat"}})),
            order("pat", "pat-o1", "books"),
            ("clickstream", b"owl", segment("identify", "owl-id", T0, userId="owl",
                                             traits={"email": "owl@example.com"},
                                             context={"timezone": zone_at(23)})),
            order("owl", "owl-o1", "books"),
            ("clickstream", b"sam", segment("identify", "sam-id", T0, userId="sam",
                                             traits={"email": "sam@example.com"},
                                             context={"timezone": zone_at(12)})),
            order("sam", "sam-o1", "books"),
        ]])
        values = consume(w.bootstrap, w.topics["actions"], lambda vs: len(vs) >= 2, timeout=30)
        got = {a.trigger_event_id: a for a in map(action_codec.decode, values)}
        # email refused: the rule's next channel, at the device's own token
        assert (got["pat-o1"].channel, got["pat-o1"].recipient) == ("push", "tok-pat")
        # a customer now: soft opt-in on email
        assert "sam-o1" in got and got["sam-o1"].recipient == "sam@example.com"

        def explain(who: str) -> str:
            out = subprocess.run(
                [sys.executable, "-m", "engine.cli", "explain", who, "--kafka"], cwd=ROOT,
                env=w.env, capture_output=True, text=True, timeout=60, check=False)
            assert out.returncode == 0, out.stderr
            return out.stdout

        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:  # the changelog is written at the worker's commit
            text = explain("user:owl")
            if "quiet_hours_deferred" in text:
                break
            time.sleep(1)
        assert "quiet_hours_deferred" in text and "policy:defer" in text, text
        # Owl's order is decided (deferred, above), and in the commit that wrote that state:
        # an action sent for it would be on the topic by now.
        values = consume(w.bootstrap, w.topics["actions"], lambda vs: False, timeout=3)
        assert "owl-o1" not in {action_codec.decode(v).trigger_event_id for v in values}
        assert "chosen    first-purchase-in-category -> welcome-books on push" in explain("user:pat")
    finally:
        w.stop()


def test_caps_and_holdouts_on_kafka(kafka_bootstrap: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        POLICY.format(start="00:00", end="00:00").replace("daily_cap = 1000\nweekly", "daily_cap = 1\nweekly", 1)
        + '\n[rules.first-purchase-in-category]\nholdout = 0.999\n'
    )
    w = Worker(kafka_bootstrap, tmp_path / "w", KAIROS_POLICY=str(policy)).start()
    try:
        produce(w.bootstrap, [(w.topics["clickstream"], k, v) for _, k, v in [
            ("clickstream", b"cap", segment("identify", "cap-id", T0, userId="cap",
                                             traits={"email": "cap@example.com"})),
            order("cap", "cap-o1", "books"), order("cap", "cap-o2", "home"),
            order("cap", "cap-o3", "electronics"),
        ]])
        orders = {"cap-o1", "cap-o2", "cap-o3"}  # each decides an action (asserted below)
        values = consume(w.bootstrap, w.topics["actions"], lambda vs: orders <= {
            action_codec.decode(v).trigger_event_id for v in vs}, timeout=30)
        got = {a.trigger_event_id: a for a in map(action_codec.decode, values)}
        # Held out: decided and recorded with control_group, so it is never delivered ...
        assert got["cap-o1"].control_group and got["cap-o1"].rule_id == "first-purchase-in-category"
        # ... and, not being delivered, it does not use up the daily email cap of 1, which the
        # cross-sell of the second order does: the third order's cross-sell, capped on email,
        # falls back to the rule's next channel, the website.
        assert got["cap-o2"].action == "cross-sell-reading-lights"
        assert not got["cap-o2"].control_group and got["cap-o2"].channel == "email"
        assert (got["cap-o3"].action, got["cap-o3"].channel) == ("cross-sell-e-readers", "web")
    finally:
        w.stop()
