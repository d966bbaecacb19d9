"""Delivery against real servers: SMTP, HTTP and Redis. Never twice, retries, dead letters;
messages rendered from templates, and a template error never reaching a provider."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from redis.asyncio import Redis

from connectors.channels.email_smtp import EmailChannel
from connectors.channels.http_provider import HttpProvider, Webhook
from connectors.channels.print_batch import PrintBatch
from connectors.channels.web import WebChannel, latest_action
from connectors.delivery import Breaker, Channel, Delivery, Outcome, Retry
from connectors.templates import Library
from engine.config import Settings
from engine.model.actions import Action
from engine.model.events import iso
from engine.sdk.ruleset import DEFAULT_RULES_DIR
from engine.testing.kafka import LINKS
from tests.integration.servers import HttpServer, SmtpServer

pytestmark = pytest.mark.redis

UNSUBSCRIBE = {"unsubscribe": "https://example.com/u/t0k"}
SHIPPED = Library(DEFAULT_RULES_DIR / "templates", links=lambda a: UNSUBSCRIBE)
WELCOME = {  # a template per channel for the `welcome-books` actions of these tests
    "email.subject": "Books for {{ contact.first_name }}",
    "email.html": "<p>Picked in {{ action.payload.category }}.</p>",
    "email.txt": "Picked in {{ action.payload.category }}.",
    "sms.txt": "{% if action.payload.text is defined %}{{ action.payload.text }}"
               "{% else %}New in {{ action.payload.category }}{% endif %}",
    "push.toml": 'title = "New in {{ action.payload.category }}"\nbody = "Have a look"',
    "web.json": '{"headline": "New in {{ action.payload.category }}"}',
    "print.toml": 'heading = "Dear {{ contact.first_name }}"\nbody = "Our {{ action.payload.category '
                  '| default(\'catalogue\') }}"',
}


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Library:
    root = tmp_path_factory.mktemp("templates")
    (root / "welcome-books").mkdir()
    for name, text in WELCOME.items():
        (root / "welcome-books" / name).write_text(text)
    return Library(root)


def action(channel: str = "email", **fields: Any) -> Action:
    now = time.time()
    base: dict[str, Any] = dict(
        action_id=f"a-{uuid.uuid4().hex[:12]}", contact_id="c1", channel=channel,
        action="welcome-books", rule_id="r", rule_version=1, score=1.0, reason="test",
        trigger_event_id="e1", event_time=iso(now), decided_at=iso(now),
        expires_at=iso(now + 3600), payload={"category": "books"},
        recipient="ada@example.com" if channel == "email" else "+33600000000",
        profile={"first_name": "Ada", "locale": "en-GB"},
    )
    return Action(**{**base, **fields})


class Harness:
    def __init__(self, redis_url: str, channels: list[Channel], attempts: int = 3) -> None:
        self.redis = Redis.from_url(redis_url)
        self.outcomes: list[Outcome] = []
        self.dead: list[tuple[str, str]] = []

        async def emit(o: Outcome) -> None:
            self.outcomes.append(o)

        async def dead(a: Action, reason: str) -> None:
            self.dead.append((a.action_id, reason))

        self.delivery = Delivery({c.name: c for c in channels}, self.redis, emit, dead,
                                 Retry(attempts=attempts, base=0.01, cap=0.05))


def run(redis_url: str, channels: list[Channel],
        body: Callable[[Harness], Awaitable[None]], attempts: int = 3) -> Harness:
    async def go() -> Harness:
        h = Harness(redis_url, channels, attempts)
        try:
            await body(h)
        finally:
            await h.redis.aclose()
        return h

    return asyncio.run(go())


def exported(delivery: Delivery) -> dict[tuple[str, ...], float]:
    """The connector's Prometheus samples: (name, *label values) -> value."""
    return {(sample.name, *sample.labels.values()): sample.value
            for family in delivery.collect() for sample in family.samples}


def smtp_settings(smtp: SmtpServer) -> Settings:
    return msgspec.structs.replace(Settings.from_env(LINKS), smtp_host="127.0.0.1",
                                   smtp_port=smtp.port)


def test_a_cart_reminder_arrives_multipart_personalised_and_exactly_once(redis_url: str) -> None:
    with SmtpServer() as smtp:
        a = action(action="cart-reminder", payload={"product_id": "tent-2p",
                                                    "categories": ["outdoor"]})

        async def body(h: Harness) -> None:
            # The same action three times, twice at once (two processes racing on a redelivery).
            await asyncio.gather(h.delivery.handle(a), h.delivery.handle(a))
            await h.delivery.handle(a)

        h = run(redis_url, [EmailChannel(smtp_settings(smtp), SHIPPED)], body)
    assert smtp.ids() == [a.action_id]
    msg = smtp.messages[0]
    assert msg["Subject"] == "Ada, your cart is waiting" and msg["To"] == "ada@example.com"
    assert msg.get_content_type() == "multipart/alternative"
    text, html = (part.get_payload(decode=True).decode() for part in msg.get_payload())
    assert [p.get_content_type() for p in msg.get_payload()] == ["text/plain", "text/html"]
    assert "Hello Ada," in text and "tent-2p" in text and UNSUBSCRIBE["unsubscribe"] in text
    assert "Hello Ada," in html and "tent-2p" in html and 'lang="en-GB"' in html
    assert orjson.loads(msg["X-SMTPAPI"]) == {"unique_args": {"kairos_action_id": a.action_id}}
    assert sorted(o.outcome for o in h.outcomes) == ["duplicate", "duplicate", "sent"]


def test_a_template_error_never_reaches_the_smtp_server(redis_url: str, lib: Library) -> None:
    with SmtpServer() as smtp:
        a = action(profile={})  # no first name: the subject's variable is undefined

        async def body(h: Harness) -> None:
            await h.delivery.handle(a)

        h = run(redis_url, [EmailChannel(smtp_settings(smtp), lib)], body)
    assert smtp.messages == []
    assert [(o.outcome, o.attempts) for o in h.outcomes] == [("failed", 1)]
    assert h.dead == [(a.action_id, "permanent failure: template welcome-books/email.subject "
                                    "line 1: UndefinedError: contact.first_name is undefined")]


def test_an_action_whose_sender_died_mid_call_is_in_doubt_unless_the_provider_dedupes(
    redis_url: str, lib: Library) -> None:
    """The mark a process leaves while a provider call is in flight: after a crash, email is
    not resent (an SMTP relay would deliver it twice) but an Idempotency-Key provider is."""
    with SmtpServer() as smtp, HttpServer() as server:
        mail, sms = action(), action("sms")

        async def body(h: Harness) -> None:
            for a in (mail, sms):  # what a connector killed inside `send` leaves behind
                await h.redis.set(f"kairos:inflight:{a.action_id}", b"1")
            for _ in range(2):  # and its redelivery, twice
                await h.delivery.handle(mail)
                await h.delivery.handle(sms)
            assert not await h.redis.exists(f"kairos:inflight:{mail.action_id}")

        h = run(redis_url, [EmailChannel(smtp_settings(smtp), lib),
                            HttpProvider("sms", server.url + "/sms", templates=lib)], body)
    assert smtp.messages == []
    assert [a for a, _ in h.dead] == [mail.action_id] and h.dead[0][1].startswith("in doubt")
    assert len(server.requests) == 1 and server.requests[0][1]["Idempotency-Key"] == sms.action_id
    assert [(o.action_id, o.outcome) for o in h.outcomes] == [
        (mail.action_id, "in_doubt"), (sms.action_id, "sent"),
        (mail.action_id, "duplicate"), (sms.action_id, "duplicate")]


def test_held_out_and_expired_actions_are_never_sent(redis_url: str, lib: Library) -> None:
    with SmtpServer() as smtp:
        held, old = action(control_group=True), action(expires_at=iso(time.time() - 1))

        async def body(h: Harness) -> None:
            await h.delivery.handle(held)
            await h.delivery.handle(old)

        h = run(redis_url, [EmailChannel(smtp_settings(smtp), lib)], body)
    assert smtp.messages == []
    assert [o.outcome for o in h.outcomes] == ["held_out", "expired"]


def test_smtp_refusals_retry_when_temporary_and_dead_letter(redis_url: str, lib: Library) -> None:
    with SmtpServer() as smtp:
        smtp.refuse = "451 try later"
        a = action()

        async def body(h: Harness) -> None:
            await h.delivery.handle(a)

        h = run(redis_url, [EmailChannel(smtp_settings(smtp), lib)], body)
        assert h.dead and "gave up after 3 attempts" in h.dead[0][1] and "451" in h.dead[0][1]
        smtp.refuse = "550 no such user"
        b = action()

        async def body2(h: Harness) -> None:
            await h.delivery.handle(b)

        h2 = run(redis_url, [EmailChannel(smtp_settings(smtp), lib)], body2)
    assert h2.outcomes[0].attempts == 1 and "permanent failure: SMTP recipient refused: 550" in h2.dead[0][1]
    assert smtp.messages == []


def test_http_provider_retries_5xx_then_succeeds_with_an_idempotency_key(redis_url: str, lib: Library) -> None:
    with HttpServer() as server:
        server.respond = lambda n: 503 if n < 3 else 200
        a = action("sms", payload={"text": "Your code"})

        async def body(h: Harness) -> None:
            await h.delivery.handle(a)
            await h.delivery.handle(a)  # redelivered: not sent again

        h = run(redis_url, [HttpProvider("sms", server.url + "/sms", "Bearer t0k", templates=lib)], body)
    assert len(server.requests) == 3
    _, headers, raw = server.requests[-1]
    assert headers["Idempotency-Key"] == a.action_id and headers["Authorization"] == "Bearer t0k"
    sent = orjson.loads(raw)
    assert sent["to"] == "+33600000000" and sent["text"] == "Your code"
    assert sent["content"] == {"text": "Your code", "segments": 1, "encoding": "GSM-7"}
    assert [(o.outcome, o.attempts) for o in h.outcomes] == [("sent", 3), ("duplicate", 0)]


def test_a_4xx_is_permanent_and_a_down_provider_opens_the_breaker(redis_url: str, lib: Library) -> None:
    with HttpServer() as server:
        server.respond = lambda n: 400
        a = action("push")

        async def body(h: Harness) -> None:
            await h.delivery.handle(a)

        h = run(redis_url, [HttpProvider("push", server.url, templates=lib)], body)
        assert len(server.requests) == 1 and "HTTP 400" in h.dead[0][1]
        server.respond = lambda n: 500
        provider = HttpProvider("push", server.url, templates=lib)

        async def many(h: Harness) -> None:
            h.delivery.breakers[provider.provider] = Breaker(threshold=3, cooldown=0.5)
            started = time.monotonic()
            await asyncio.gather(*(h.delivery.handle(action("push")) for _ in range(2)))
            assert time.monotonic() - started >= 0.4  # waited for the breaker to half-open
            # what the KairosProviderBreakerOpen and KairosDeliveriesFailing alerts read
            assert exported(h.delivery)[("kairos_breaker_open", provider.provider)] == 1.0
            assert exported(h.delivery)[("kairos_deliveries_total", "push", "failed")] == 2.0

        before = len(server.requests)
        h = run(redis_url, [provider], many, attempts=3)
    assert len(h.dead) == 2 and len(server.requests) - before == 6


def test_a_rejected_number_and_a_breaker_open_too_long_are_reported_failed_for_good(
    redis_url: str, lib: Library,
) -> None:
    with HttpServer() as server:
        server.respond = lambda n: 400
        rejected = action("sms")

        async def body(h: Harness) -> None:
            await h.delivery.handle(rejected)

        h = run(redis_url, [HttpProvider("sms", server.url, templates=lib)], body)
        [o] = h.outcomes
        assert (o.outcome, o.permanent, o.attempts) == ("failed", True, 1)
        assert o.reason is not None and o.reason.startswith("permanent failure: HTTP 400")
        server.respond = lambda n: 503
        provider = HttpProvider("sms", server.url, templates=lib)

        async def down(h: Harness) -> None:
            h.delivery.breakers[provider.provider] = Breaker(threshold=2, cooldown=30)
            h.delivery.fallback_after = 0.3
            await h.delivery.handle(action("sms"))  # opens the breaker, then waits it out
            started = time.monotonic()
            await h.delivery.handle(action("sms"))
            assert time.monotonic() - started < 5  # gave up at fallback_after, not the cool-down

        before = len(server.requests)
        h = run(redis_url, [provider], down, attempts=3)
    assert len(server.requests) - before == 2  # the breaker opened at two: nothing more sent
    assert [(o.outcome, o.permanent) for o in h.outcomes] == [("failed", True)] * 2
    assert all("unavailable for 0.3 s" in (o.reason or "") for o in h.outcomes)


def test_the_web_channel_keeps_the_latest_unexpired_action_per_contact(redis_url: str, lib: Library) -> None:
    older = action("web", decided_at=iso(time.time() - 60), payload={"category": "older"})
    newer = action("web", payload={"category": "newer"})
    short = action("web", contact_id="c2", expires_at=iso(time.time() + 1))

    async def body(h: Harness) -> None:
        await h.delivery.handle(newer)
        await h.delivery.handle(older)  # decided earlier, arrived later: does not win
        await h.delivery.handle(short)
        got = orjson.loads(await latest_action(h.redis, "c1") or b"null")
        assert got["action_id"] == newer.action_id
        assert got["content"] == {"headline": "New in newer"}  # its web.json, rendered
        assert await latest_action(h.redis, "c2") is not None
        await asyncio.sleep(1.2)
        assert await latest_action(h.redis, "c2") is None  # expired with the action

    run(redis_url, [WebChannel(Redis.from_url(redis_url), lib)], body)


def test_webhooks_are_signed_and_print_actions_land_in_a_daily_csv(
    redis_url: str, tmp_path: Path, lib: Library) -> None:
    with HttpServer() as server:
        a = action("crm")

        async def body(h: Harness) -> None:
            await h.delivery.handle(a)

        run(redis_url, [Webhook("crm", server.url, "whsec")], body)
    _, headers, raw = server.requests[0]
    mac = hmac.new(b"whsec", headers["X-Kairos-Timestamp"].encode() + b"." + raw, hashlib.sha256)
    assert headers["X-Kairos-Signature"] == f"sha256={mac.hexdigest()}"
    assert orjson.loads(raw)["action_id"] == a.action_id
    p = action("print", payload={"address": {"street": "1 rue X", "city": "Lyon"}})

    async def body2(h: Harness) -> None:
        await h.delivery.handle(p)
        await h.delivery.handle(p)

    run(redis_url, [PrintBatch(tmp_path, lib)], body2)
    [batch] = list(tmp_path.glob("print-*.csv"))
    rows = list(csv.DictReader(batch.open()))
    assert [(r["action_id"], r["city"]) for r in rows] == [(p.action_id, "Lyon")]
    assert orjson.loads(rows[0]["letter"]) == {"heading": "Dear Ada", "body": "Our catalogue"}


def test_rate_limits_are_shared_by_every_process(redis_url: str, lib: Library) -> None:
    with HttpServer() as server:
        provider = HttpProvider("sms", server.url, templates=lib)

        async def body(h: Harness) -> None:
            other = Delivery(h.delivery.channels, h.redis, h.delivery.emit_outcome,
                             h.delivery.dead_letter, rate_limits={provider.provider: 5})
            h.delivery.rate_limits = {provider.provider: 5}
            started = time.monotonic()
            await asyncio.gather(*(d.handle(action("sms")) for d in (h.delivery, other)
                                   for _ in range(8)))
            assert time.monotonic() - started >= 2.0  # 16 sends at 5/s shared: 3 windows

        run(redis_url, [provider], body)
    assert len(server.requests) == 16
