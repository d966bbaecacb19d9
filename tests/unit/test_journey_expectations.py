"""The scripted journey the Kafka tests play, checked in the embedded runtime without a broker,
so a rule change that moves its expected actions fails here first, with a clear message."""

from __future__ import annotations

from engine.core.policy import Policy
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet
from engine.testing import UNLIMITED_POLICY
from tests.integration.journey import EXPECTED, phase_one, phase_two


def test_the_scripted_journey_decides_the_expected_actions() -> None:
    actions = []
    runtime = EmbeddedRuntime(Pipeline(RuleSet.load(), Policy.load(UNLIMITED_POLICY)),
                              on_action=actions.append, clock="wall")
    for source, _, value in phase_one("x") + phase_two("x"):
        runtime.submit(value, source)  # type: ignore[arg-type]
    got = {a.trigger_event_id: (a.rule_id, a.channel, a.action) for a in actions}
    assert {f"x-{k}": v for k, v in EXPECTED.items()} == {k: got.get(k) for k in (f"x-{s}" for s in EXPECTED)}
