"""Testing kits: `Scenario` for rule authors (in memory, no broker) and, in
`engine.testing.kafka`, real worker processes against a broker (imported only from there)."""

from engine.testing.scenario import UNLIMITED_POLICY, Scenario

__all__ = ["UNLIMITED_POLICY", "Scenario"]
