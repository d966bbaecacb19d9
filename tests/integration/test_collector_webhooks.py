"""The email webhooks over real HTTP: every SendGrid event type, a second provider (Mailgun) in
its own shape and signature scheme, and one bad or unknown event never costing the POST."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest

from engine.model.events import EMAIL_EVENTS
from engine.topics import DEFAULT_INPUTS
from tests.integration.edge import Collector, mailgun_body, post, sendgrid_headers

GROUP = 4242
EMAIL_TOPIC = DEFAULT_INPUTS["email"]


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def sendgrid(event: str, email: str, n: int, at: float, **extra: object) -> dict[str, object]:
    return {"event": event, "email": email, "timestamp": at, "sg_event_id": f"sg-{event}-{n}",
            "sg_message_id": "msg-1", **extra}


def every_sendgrid_event(email: str, at: float) -> list[dict[str, object]]:
    """SendGrid's documented list, each with the fields it carries."""
    extras: dict[str, dict[str, object]] = {
        "bounce": {"type": "bounce", "reason": "550 5.1.1 no such user"},
        "dropped": {"reason": "Invalid"}, "deferred": {"reason": "try later"},
        "click": {"url": "https://shop.example/p/1"},
        "group_unsubscribe": {"asm_group_id": GROUP},
        "group_resubscribe": {"asm_group_id": GROUP},
    }
    order = ["processed", "deferred", "delivered", "open", "click", "group_unsubscribe",
             "group_resubscribe", "dropped", "spamreport", "unsubscribe", "bounce"]
    assert sorted(order) == sorted(EMAIL_EVENTS)  # the decoder's list, all of it
    events = [sendgrid(name, email, i, at + i, **extras.get(name, {}))
              for i, name in enumerate(order)]
    events.append(sendgrid("bounce", email, 99, at + 20, type="blocked", reason="blocked"))
    return events


def test_a_signed_webhook_with_every_sendgrid_event_type_becomes_state(
    collector: Collector,
) -> None:
    url = f"{collector.url}/v1/webhooks/email"
    at = time.time() - 60
    # The group's answer alone first: out, then back in, as the recipient clicked.
    pair = [sendgrid("group_unsubscribe", "pat@example.com", 1, at, asm_group_id=GROUP),
            sendgrid("group_resubscribe", "pat@example.com", 2, at + 1, asm_group_id=GROUP)]
    body = orjson.dumps(pair[:1])
    assert post(url, body, sendgrid_headers(body), key=None)[1]["accepted"] == 1
    assert collector.contact("email:pat@example.com").consent[f"email/{GROUP}"].granted is False
    body = orjson.dumps(pair[1:])
    assert post(url, body, sendgrid_headers(body), key=None)[1]["accepted"] == 1
    held = collector.contact("email:pat@example.com").consent[f"email/{GROUP}"]
    assert held.granted is True and held.source == "email:group_resubscribe"

    events = every_sendgrid_event("Ann@Example.com", at)
    body = orjson.dumps(events)
    status, answer = post(url, body, sendgrid_headers(body), key=None)
    assert (status, answer["accepted"], answer["rejected"]) == (200, len(events), [])
    ann = collector.contact("email:ann@example.com")
    assert ann.consent["email"].granted is False  # unsubscribe
    assert ann.suppressed["email"] == "hard bounce"
    assert ann.suppressed["email/marketing"] == "spam report"
    assert collector.runtime.pipeline.metrics.events[EMAIL_TOPIC] == len(events) + 2


def test_an_unknown_or_bad_sendgrid_event_is_dead_lettered_alone(collector: Collector) -> None:
    url = f"{collector.url}/v1/webhooks/email/sendgrid"  # the alias of /v1/webhooks/email
    at = time.time()
    events: list[object] = [sendgrid("delivered", f"g{i}@example.com", i, at) for i in range(5)]
    events.insert(2, sendgrid("machine_opened", "new@example.com", 7, at))  # a future type
    events.append({"event": "open", "email": "not-an-address", "timestamp": at,
                   "sg_event_id": "x"})
    body = orjson.dumps(events)
    status, answer = post(url, body, sendgrid_headers(body), key=None)
    assert (status, answer["success"], answer["accepted"]) == (200, True, 5)
    assert [(r["index"], r["code"], r["field"]) for r in answer["rejected"]] == [
        (2, "unsupported_type", "$[2].event"), (6, "invalid_event", "$[6].email")]
    assert [(d.key, d.topic) for d in collector.dead] == [("new@example.com", EMAIL_TOPIC),
                                                         ("not-an-address", EMAIL_TOPIC)]
    assert orjson.loads(collector.dead[0].original())["event"] == "machine_opened"


def mailgun_event(event: str, n: int, **extra: object) -> dict[str, object]:
    return {"event": event, "id": f"mg-{event}-{n}", "timestamp": time.time() - 30 + n,
            "recipient": "Mo@Example.com", "message": {"headers": {"message-id": "m@mg"}},
            "user-variables": {"kairos_action_id": "act-1"}, **extra}


def test_mailgun_events_feed_the_same_state_as_sendgrids(collector: Collector) -> None:
    url = f"{collector.url}/v1/webhooks/email/mailgun"
    for n, (event, extra) in enumerate([
        ("accepted", {}), ("delivered", {}), ("opened", {}),
        ("clicked", {"url": "https://shop.example/p/2"}),
        ("failed", {"severity": "temporary", "reason": "generic"}),
        ("complained", {}), ("unsubscribed", {}),
        ("failed", {"severity": "permanent", "reason": "bounce",
                    "delivery-status": {"code": 550, "description": "No such mailbox"}}),
    ]):
        status, answer = post(url, mailgun_body(mailgun_event(event, n, **extra)), key=None)
        assert (status, answer["accepted"], answer["rejected"]) == (200, 1, []), event
    mo = collector.contact("email:mo@example.com")
    assert mo.consent["email"].granted is False and mo.consent["email"].source == \
        "email:unsubscribe"
    assert mo.suppressed["email"] == "hard bounce"
    assert mo.suppressed["email/marketing"] == "spam report"
    assert collector.runtime.pipeline.metrics.events[EMAIL_TOPIC] == 8


def test_mailgun_signature_is_checked_and_an_unknown_event_is_dead_lettered(
    collector: Collector,
) -> None:
    url = f"{collector.url}/v1/webhooks/email/mailgun"
    event = mailgun_event("delivered", 1)
    status, answer = post(url, mailgun_body(event, key="someone-else"), key=None)
    assert (status, answer["code"], answer["field"]) == (401, "bad_signature",
                                                         "$.signature.signature")
    stale = mailgun_body(event, stamp=int(time.time()) - 3600)
    assert post(url, stale, key=None)[1]["message"].startswith("stale signature")
    forged = orjson.loads(mailgun_body(event))
    forged["signature"]["timestamp"] = str(int(time.time()) + 1)  # not what was signed
    assert post(url, orjson.dumps(forged), key=None)[0] == 401
    assert post(url, orjson.dumps({"event-data": event}), key=None)[0] == 401
    status, answer = post(url, mailgun_body(mailgun_event("stored", 2)), key=None)
    assert (status, answer["accepted"]) == (200, 0)
    assert [(r["code"], r["field"]) for r in answer["rejected"]] == [
        ("unsupported_type", "$['event-data'].event")]
    no_id = {k: v for k, v in mailgun_event("opened", 3).items() if k != "id"}
    assert post(url, mailgun_body(no_id), key=None)[1]["rejected"][0]["field"] == \
        "$['event-data'].id"
    assert [d.key for d in collector.dead] == ["mo@example.com", "mo@example.com"]
    assert collector.runtime.pipeline.metrics.events.get(EMAIL_TOPIC, 0) == 0
