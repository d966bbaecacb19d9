"""One-click unsubscribe end to end: a marketing email through a real SMTP server, its link
clicked on the collector (embedded engine behind it), and the next decision without email."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from email.message import Message

import aiohttp
import msgspec
import orjson
import pytest

from connectors.channels.email_smtp import EmailChannel
from connectors.connect import library
from engine.config import Settings
from engine.model.actions import Action
from engine.testing.kafka import LINKS
from tests.integration.edge import Collector, call, post
from tests.integration.servers import SmtpServer

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def http(method: str, url: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Status, media type and text of one request, as a mailbox provider or a browser sends it."""
    async def go() -> tuple[int, str, str]:
        async with aiohttp.ClientSession() as s, s.request(method, url, data=body,
                                                            headers=headers) as r:
            return r.status, r.content_type, await r.text()

    return asyncio.run(go())


def order(collector: Collector, user: str, category: str) -> list[Action]:
    """A first purchase in `category`: the welcome offer it leads to, on whichever channel."""
    before = len(collector.actions)
    status, _ = post(f"{collector.url}/v1/track", orjson.dumps(call(
        userId=user, event="Order Completed", properties={"products": [{"category": category}]})))
    assert status == 200
    return [a for a in collector.actions[before:] if a.contact_id == collector.contact(
        f"user:{user}").contact_id]


def customer(collector: Collector, user: str) -> Action:
    """A consenting customer with an email address and the welcome email of their first order."""
    status, _ = post(f"{collector.url}/v1/identify", orjson.dumps(call(
        userId=user, traits={"email": f"{user}@example.com", "consent": {"email": True}})))
    assert status == 200
    (welcome,) = order(collector, user, "books")
    assert (welcome.channel, welcome.recipient) == ("email", f"{user}@example.com")
    return welcome


def delivered(smtp: SmtpServer, collector: Collector, action: Action) -> Message:
    settings = Settings.from_env({**LINKS, "KAIROS_PUBLIC_URL": collector.url,
                                  "KAIROS_SMTP_PORT": str(smtp.port)})
    asyncio.run(EmailChannel(settings, library(settings)).send(action))
    return smtp.messages[-1]


def link_of(message: Message) -> str:
    header = str(message["List-Unsubscribe"])
    https, mailto = header.split(", ")
    assert https.startswith("<http://127.0.0.1:") and mailto.startswith("<mailto:unsubscribe@")
    token = https.removesuffix(">").rsplit("/", 1)[1]
    assert mailto == f"<mailto:unsubscribe@localhost?subject={token}>"
    return https[1:-1]


def test_the_one_click_link_stops_the_next_email(collector: Collector) -> None:
    welcome = customer(collector, "ada")
    with SmtpServer() as smtp:
        message = delivered(smtp, collector, welcome)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = link_of(message)
    parts = [p.get_payload(decode=True) for p in message.walk()
             if p.get_content_type() in ("text/plain", "text/html")]
    assert len(parts) == 2  # the body's link is the header's, in both (the shipped layouts)
    assert all(isinstance(p, bytes) and url.encode() in p for p in parts)

    # A mail scanner following the link sees a page; nothing is unsubscribed.
    status, media, page = http("GET", url)
    assert (status, media) == (200, "text/html")
    assert '<form method="post">' in page and 'name="List-Unsubscribe" value="One-Click"' in page
    assert collector.contact("user:ada").consent["email"].granted

    # The mailbox provider's one-click POST (RFC 8058).
    status, media, answer = http("POST", url, b"List-Unsubscribe=One-Click", ONE_CLICK)
    assert (status, orjson.loads(answer)) == (200, {"success": True, "unsubscribed": "email"})
    consent = collector.contact("user:ada").consent["email"]
    assert (consent.granted, consent.source) == (False, "email:unsubscribe")
    assert [a.channel for a in order(collector, "ada", "garden")] == []  # no push token either

    # Clicking again changes nothing more: the same event, a duplicate.
    events = collector.runtime.pipeline.metrics.events.copy()
    assert http("POST", url, b"List-Unsubscribe=One-Click", ONE_CLICK)[0] == 200
    assert collector.contact("user:ada").consent["email"] == consent
    assert collector.runtime.pipeline.metrics.events != events  # it did arrive


def test_a_token_for_one_contact_cannot_unsubscribe_another(collector: Collector) -> None:
    ada, bob = customer(collector, "ada2"), customer(collector, "bob2")
    with SmtpServer() as smtp:
        url = link_of(delivered(smtp, collector, ada))
    base, token = url.rsplit("/", 1)
    payload, mac = token.split(".")
    fields = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    fields[1], fields[2] = bob.contact_id, f"{bob.recipient}\n"
    edited = base64.urlsafe_b64encode(orjson.dumps(fields)).rstrip(b"=").decode()
    status, media, answer = http("POST", f"{base}/{edited}.{mac}", b"List-Unsubscribe=One-Click",
                                 ONE_CLICK)
    assert (status, media) == (401, "application/json")
    assert orjson.loads(answer)["code"] == "bad_signature"
    status, media, page = http("GET", f"{base}/{edited}.{mac}")
    assert (status, media) == (401, "text/html") and "signature does not match" in page
    assert [a.channel for a in order(collector, "bob2", "garden")] == ["email"]


def test_a_group_link_withdraws_that_group_only(collector: Collector) -> None:
    welcome = msgspec.structs.replace(customer(collector, "cy"), group="newsletter")
    with SmtpServer() as smtp:
        url = link_of(delivered(smtp, collector, welcome))
    status, _, answer = http("POST", url, b"List-Unsubscribe=One-Click", ONE_CLICK)
    assert (status, orjson.loads(answer)["unsubscribed"]) == (200, "newsletter")
    state = collector.contact("user:cy")
    assert state.consent["email/newsletter"].granted is False
    assert state.consent["email"].granted is True


def test_a_post_without_the_one_click_body_is_refused(collector: Collector) -> None:
    welcome = customer(collector, "dee")
    with SmtpServer() as smtp:
        url = link_of(delivered(smtp, collector, welcome))
    status, _, answer = http("POST", url, b"", ONE_CLICK)
    assert status == 400
    assert orjson.loads(answer)["message"] == \
        "expected the form body List-Unsubscribe=One-Click (RFC 8058)"
    assert collector.contact("user:dee").consent["email"].granted is True
