"""`kairos demo`: a few hundred contacts' journeys through the embedded runtime, live on screen."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.ops.generator import JourneyGenerator
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet

CHANNEL_ICONS = {"email": "✉", "sms": "✆", "push": "➚", "web": "◉", "crm": "☎", "print": "⎙"}


def run_demo(
    contacts: int = 300, seed: int = 7, pace: float = 0.01, out: TextIO = sys.stdout
) -> int:
    """Decide every event, printing each action as it comes; time only the deciding."""
    decided: list[Action | DeadLetter] = []
    rules = RuleSet.load()
    pipeline = Pipeline(rules)
    runtime = EmbeddedRuntime(pipeline, on_action=decided.append, on_dead_letter=decided.append)
    out.write(f"Kairos demo: {contacts} contacts, rules: {', '.join(rules.rules)}\n\n")
    actions: Counter[tuple[str, str]] = Counter()
    dead: Counter[str] = Counter()
    events = list(JourneyGenerator(contacts, seed=seed))
    busy = 0.0
    for i, g in enumerate(events):
        started = time.perf_counter()
        runtime.submit(g.value, g.source)
        if i == len(events) - 1:
            runtime.tick(runtime.watermark + 7200)  # let pending abandonment timers come due
        busy += time.perf_counter() - started
        for item in decided:
            if isinstance(item, Action):
                actions[(item.rule_id, item.channel)] += 1
                out.write(_line(item))
            else:
                dead[item.category()] += 1
                out.write(f"{'':19}  dead letter from {item.source}: {item.reason[:70]}\n")
            out.flush()
            time.sleep(pace)
        decided.clear()
    runtime.close()
    out.write("\nSummary\n")
    out.write(f"  events: {len(events)}, decided at {len(events) / busy:,.0f} events/s "
              f"({busy:.2f} s of decision time)\n")
    out.write(f"  actions: {sum(actions.values())}\n")
    for (rule_id, channel), n in sorted(actions.items()):
        out.write(f"    {rule_id:<30} {channel:<6} {n:>5}\n")
    held: Counter[str] = Counter()
    for (_, _, reason), n in pipeline.metrics.suppressions.items():
        held[reason] += n
    out.write(f"  held back by the contact policy: {sum(held.values())} {dict(held)}\n")
    out.write(f"  dead letters: {sum(dead.values())} {dict(dead)}\n")
    return 0


def _line(a: Action) -> str:
    icon = CHANNEL_ICONS.get(a.channel, "•")
    return (
        f"{a.decided_at[:19]}  {a.contact_id}  {icon} {a.channel:<5} {a.action:<20} "
        f"← {a.rule_id}\n"
    )
