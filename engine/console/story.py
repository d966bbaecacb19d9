"""A contact's story for the Contact page: the profile, and a timeline of events and decisions.

Read from the contact state the engine keeps anyway (bounded: the latest events, decisions and
refusals of `engine/model/state.py`), so the console stores nothing per contact of its own. Each
decision groups every candidate the event raised, with its fate and reason, under the event
that triggered it; a timer or a quiet-hours deferral that fired is its own entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.console.mask import ADDRESS_CHANNELS, mask, mask_identifier, mask_traits
from engine.model.explained import DecisionRecord
from engine.model.state import ContactState, Timer

__all__ = ["Entry", "Profile", "profile", "stamp", "timeline"]


def stamp(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True, slots=True)
class Profile:
    contact_id: str
    identifiers: list[str]
    traits: dict[str, Any]
    consent: list[tuple[str, bool, float, str, str]]  # key, granted, at, how, event id
    addresses: list[tuple[str, str]]  # channel, address
    suppressed: dict[str, str]
    stage: str
    lifecycle: str
    timezone: str
    locale: str
    preferred_channel: str
    first_seen: float
    last_seen: float
    scores: list[tuple[str, float, float]]  # domain, value, as of
    timers: list[Timer]
    purchases: int
    revenue: float
    account: str


def profile(st: ContactState, *, unmasked: bool) -> Profile:
    def shown(channel: str, value: str) -> str:
        return value if unmasked or channel not in ADDRESS_CHANNELS else mask(value)

    return Profile(
        contact_id=st.contact_id,
        identifiers=list(st.identifiers) if unmasked else [mask_identifier(i) for i in
                                                           st.identifiers],
        traits=dict(st.traits) if unmasked else mask_traits(dict(st.traits)),
        consent=[(k, c.granted, c.at, c.source, c.event_id or "")
                 for k, c in sorted(st.consent.items())],
        addresses=[(ch, shown(ch, a.value)) for ch, a in sorted(st.addresses.items())],
        suppressed=dict(st.suppressed),
        stage=st.stage, lifecycle=st.lifecycle, timezone=st.timezone or "UTC",
        locale=st.locale or "-", preferred_channel=st.preferred_channel or "-",
        first_seen=st.first_seen, last_seen=st.last_seen,
        scores=[(k, s.value, s.at) for k, s in sorted(st.scores.items())],
        timers=sorted(st.timers, key=lambda t: t.due),
        purchases=len(st.purchases),
        revenue=sum(p.revenue or 0.0 for p in st.purchases),
        account=st.account.group_id if st.account else "-",
    )


@dataclass(slots=True)
class Entry:
    """One line of the timeline: an event (or a timer that fired) and what it decided."""

    at: float
    title: str
    kind: str  # track, page, identify, email, ..., or "timer"
    event_id: str
    decisions: list[DecisionRecord] = field(default_factory=list)
    recipient: dict[str, str] = field(default_factory=dict)  # action id -> masked recipient


def timeline(st: ContactState, *, unmasked: bool) -> list[Entry]:
    """Newest first: the contact's latest events, each with its candidates' fates."""
    entries: dict[str, Entry] = {}
    for ev in st.recent:
        entries[ev.event_id] = Entry(ev.time, ev.name or ev.kind, ev.kind, ev.event_id)
    for d in st.decisions:
        entry = entries.get(d.trigger_event_id) or entries.get(_cause(d.trigger_event_id))
        if entry is None:
            timer = d.trigger_event_id.startswith("timer:")
            entry = entries[d.trigger_event_id] = Entry(
                d.at, "timer fired" if timer else d.trigger_event_id,
                "timer" if timer else "decision", d.trigger_event_id)
        entry.decisions.append(d)
    for a in st.outbox:
        for entry in entries.values():
            if a.recipient and any(d.action_id == a.action_id for d in entry.decisions):
                entry.recipient[a.action_id] = (a.recipient if unmasked or a.channel not in
                                                ADDRESS_CHANNELS else mask(a.recipient))
    order = {id(e): i for i, e in enumerate(entries.values())}  # same instant: as they came
    return sorted(entries.values(), key=lambda e: (e.at, order[id(e)]), reverse=True)


def _cause(trigger_event_id: str) -> str:
    """A stage or lifecycle change is decided as `<event id>:stage:<value>`: its event's id."""
    head = trigger_event_id.rpartition(":")[0]
    return head.rpartition(":")[0] if head.endswith((":stage", ":lifecycle")) else ""
