"""`make demo`'s engine part: generated journeys decided on the embedded default, shown as they
come, then a summary. No broker, no server."""

from __future__ import annotations

import io
import re

from engine.ops.demo import run_demo


def test_the_demo_shows_actions_being_decided_and_a_summary() -> None:
    out = io.StringIO()
    assert run_demo(contacts=60, seed=3, pace=0, out=out) == 0
    text = out.getvalue()
    assert text.startswith("Kairos demo: 60 contacts, rules: ")
    assert re.search(r"events/s", text)
    shown = [line for line in text.splitlines() if " ← " in line]
    assert len(shown) > 20  # each decided action, as it came
    assert "first-purchase-in-category" in text and "dead letters:" in text
