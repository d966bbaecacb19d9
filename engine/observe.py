"""What the engine learns from every event before any rule sees it.

Consent revocations are applied here, first, so an unsubscribe or spam report takes effect
before anything else about that event (or any later one) is decided.
"""

from __future__ import annotations

from typing import Any

from engine.actions import CHANNELS
from engine.events import Event
from engine.identity import identifiers
from engine.state import STAGES, Consent, ContactState, Purchase

REVOKES_EMAIL = ("unsubscribe", "group_unsubscribe", "spamreport")
PURCHASE_EVENTS = ("Order Completed",)
SIGNUP_EVENTS = ("Signed Up",)


def observe(state: ContactState, event: Event) -> None:
    t = event.time
    state.first_seen = min(state.first_seen, t) if state.first_seen else t
    state.last_seen = max(state.last_seen, t)
    for ident in identifiers(event):
        state.add_identifier(ident)
    _consent(state, event)
    state.bump(event.kind, t)
    base = f"{event.kind}:{event.name}"
    state.bump(base, t)
    for cat in event.categories:
        state.bump(f"{base}@{cat}", t)
        state.bump(f"category@{cat}", t)
    if event.timezone:
        state.timezone = event.timezone
    if event.location:
        state.location = event.location
    if event.kind == "identify":
        state.set_traits(event.traits)
        pref = event.traits.get("preferred_channel")
        if isinstance(pref, str) and pref in CHANNELS:
            state.preferred_channel = pref
    if event.kind == "track":
        if event.name in PURCHASE_EVENTS:
            _purchase(state, event)
        elif event.name in SIGNUP_EVENTS and state.lifecycle == "prospect":
            state.lifecycle = "lead"
    state.remember(event)


def _consent(state: ContactState, event: Event) -> None:
    if event.kind == "email" and event.name in REVOKES_EMAIL:
        state.consent["email"] = Consent(False, event.time, f"email:{event.name}")
        return
    answers: Any = event.traits.get("consent") if event.kind == "identify" else None
    if isinstance(answers, dict):
        for channel, granted in answers.items():
            if channel in CHANNELS and isinstance(granted, bool):
                state.consent[channel] = Consent(granted, event.time, "traits")


def _purchase(state: ContactState, event: Event) -> None:
    revenue = event.properties.get("revenue", event.properties.get("total"))
    order_id = event.properties.get("order_id")
    state.purchases.append(
        Purchase(
            at=event.time,
            order_id=order_id if isinstance(order_id, str) else None,
            categories=event.categories,
            revenue=float(revenue) if isinstance(revenue, int | float) else None,
        )
    )
    del state.purchases[:-20]
    state.lifecycle = "repeat" if state.lifecycle in ("customer", "repeat") else "customer"
    state.stage = STAGES[-1]
