"""The pure decision core: `decide(state, key, message, now, rules, policy)`.

No Kafka, no Redis, no clock read that decides anything (only `perf_counter` around each rule's
run, for a metric): the same input gives the same new state, actions and emits in tests,
replays and production. Read `decide.py` first; it reaches `observe` (what an event
teaches about a contact), `arbitration` (candidates to the next best action under the
`policy`), `identity` (one contact per person) and `merge` (two contacts becoming one).
"""

from engine.core.decide import Decision, decide
from engine.core.policy import DEFAULT_POLICY, Policy

__all__ = ["DEFAULT_POLICY", "Decision", "Policy", "decide"]
