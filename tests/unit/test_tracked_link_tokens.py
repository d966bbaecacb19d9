"""Tracked link tokens: bound to their action and target, expiring, unforgeable; and the HTTP
provider puts them in SMS and push bodies."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from connectors.channels.http_provider import HttpProvider
from connectors.templates import Library
from connectors.tracked_links import LinkError, LinkSigner, open_link_token, sign_link_token
from engine.model.actions import Action

SECRET = "tracked-link-test-secret"
TARGET = "https://shop.example.com/p/1"


def action(**fields: object) -> Action:
    base: dict[str, object] = dict(
        action_id="a1", contact_id="c1", channel="sms", action="come-back", rule_id="r",
        rule_version=1, score=1.0, reason="t", trigger_event_id="e1", event_time="",
        decided_at="", expires_at="", recipient="+33600000000",
        payload={"url": TARGET, "text": f"Back in stock: {TARGET}"})
    return Action(**{**base, **fields})  # type: ignore[arg-type]


def test_a_token_opens_to_its_action_and_target_until_it_expires() -> None:
    token = sign_link_token(SECRET, action(), TARGET, 1_000)
    click = open_link_token(SECRET, token, 999)
    assert (click.action_id, click.contact_id, click.channel, click.action, click.target) == (
        "a1", "c1", "sms", "come-back", TARGET)
    with pytest.raises(LinkError, match="expired"):
        open_link_token(SECRET, token, 1_001)


def test_a_forged_or_altered_token_is_refused() -> None:
    token = sign_link_token(SECRET, action(), TARGET, 1_000)
    with pytest.raises(LinkError, match="signature does not match"):
        open_link_token("another secret, not ours", token, 0)
    mac = token.split(".")[1]
    altered = sign_link_token(SECRET, action(), "https://evil.example.com", 1_000).split(".")[0]
    with pytest.raises(LinkError, match="signature does not match"):
        open_link_token(SECRET, f"{altered}.{mac}", 0)
    with pytest.raises(LinkError, match="signature does not match"):
        open_link_token(SECRET, "%%%.!!", 0)
    with pytest.raises(LinkError, match="not a link token"):
        open_link_token(SECRET, "no-dot-at-all", 0)
    with pytest.raises(ValueError, match=r"http\(s\) URL"):
        sign_link_token(SECRET, action(), "javascript:alert(1)", 1_000)


def test_the_http_provider_sends_the_tracked_link_in_payload_and_text(tmp_path: Path) -> None:
    (tmp_path / "come-back").mkdir()
    (tmp_path / "come-back" / "sms.txt").write_text("Back in stock: {{ action.payload.url }}")
    lib = Library(tmp_path)
    signer = LinkSigner("https://collect.example.com/", SECRET, 3_600)
    sent = orjson.loads(HttpProvider("sms", "http://x", templates=lib, links=signer)
                        .body(action()))
    tracked = sent["payload"]["url"]
    assert tracked.startswith("https://collect.example.com/v1/r/")
    assert sent["text"] == f"Back in stock: {tracked}"
    assert open_link_token(SECRET, tracked.rsplit("/", 1)[1], 0).target == TARGET
    plain = orjson.loads(HttpProvider("sms", "http://x", templates=lib).body(action()))
    assert plain["payload"]["url"] == TARGET
