"""Bench only: one low-priority web action for every input event.

Most events cause no action under the shipped rules, so event -> action latency would rest on a
few percent of the events. With this rule beside them every event yields exactly one action
(it loses arbitration to any shipped rule that fires, which then carries the same trigger id),
so every event is a latency sample and every system in the comparison produces once per event.
`python -m load_tests.bench --no-probe-rule` measures with the shipped rules alone.
"""

from engine.sdk.rule import Context, Proposal, on, rule

KINDS = ("page", "track", "identify", "email", "social")


@rule(
    "bench-probe",
    triggers=[on(kind) for kind in KINDS],
    description="bench latency probe: a web action for every event",
)
def bench_probe(ctx: Context) -> Proposal:
    return Proposal(action="bench-probe", channels=("web",), priority=1.0, ttl=3600.0)
