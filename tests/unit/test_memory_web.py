"""The embedded web channel keeps what the Redis one keeps: the newest unexpired web action."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from connectors.channels import web as web_module
from connectors.channels.web import MemoryWeb
from engine.model import actions as action_codec
from engine.model.actions import Action
from engine.model.events import epoch

NOW = epoch("2026-06-01T12:00:00.000Z")


def action(decided: str, channel: str = "web", expires: str = "2026-06-02T00:00:00.000Z",
           **fields: object) -> Action:
    return Action(action_id=f"a-{decided}", contact_id="c1", channel=channel, action="offer",
                  rule_id="r", rule_version=1, score=1.0, reason="", trigger_event_id="e",
                  event_time=decided, decided_at=decided, expires_at=expires, **fields)


def test_the_newest_unexpired_web_action_is_kept_and_only_for_its_contact() -> None:
    web = MemoryWeb({"anon:a": b"c1"}.get, clock=lambda: NOW)
    newer, older = action("2026-06-01T11:00:00.000Z"), action("2026-06-01T10:00:00.000Z")
    for a in (newer, older, action("2026-06-01T11:30:00.000Z", channel="email"),
              action("2026-06-01T11:40:00.000Z", control_group=True)):
        web.remember(a)
    assert asyncio.run(web.latest("c1")) == action_codec.encode(newer)
    assert asyncio.run(web.latest("c2")) is None
    assert asyncio.run(web.contact_of("anon:a")) == "c1"
    assert asyncio.run(web.contact_of("anon:b")) is None


def test_an_expired_action_is_not_shown() -> None:
    web = MemoryWeb({}.get, clock=lambda: NOW)
    web.remember(action("2026-06-01T09:00:00.000Z", expires="2026-06-01T11:59:59.000Z"))
    assert asyncio.run(web.latest("c1")) is None


def test_a_full_store_drops_expired_actions_and_keeps_live_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_module, "PRUNE_AT", 3)
    clock = [NOW]
    web = MemoryWeb({}.get, clock=lambda: clock[0])
    for contact in ("c1", "c2", "c3"):  # these expire at NOW + 60
        web.remember(msgspec.structs.replace(action("2026-06-01T11:00:00.000Z",
                     expires="2026-06-01T12:01:00.000Z"), contact_id=contact))
    clock[0] = NOW + 120
    web.remember(msgspec.structs.replace(action("2026-06-01T12:01:00.000Z"), contact_id="c4"))
    assert set(web.actions) == {"c4"}
    assert asyncio.run(web.latest("c4")) is not None
