"""The HTTP collector on a real loopback port, fed by real clients and the Segment library."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from engine.testing import UNLIMITED_POLICY
from tests.integration.edge import (
    KEY,
    Collector,
    call,
    post,
    request,
    sendgrid_headers,
    social_headers,
)
from tests.integration.servers import kairos_run_http


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def test_the_official_segment_library_works_unchanged(collector: Collector) -> None:
    from segment.analytics import Client

    for use_gzip in (False, True):
        client = Client(KEY, host=collector.url, gzip=use_gzip, max_retries=1)
        client.identify(f"lib-{use_gzip}", {"email": f"lib{use_gzip}@example.com"})
        client.track(f"lib-{use_gzip}", "Order Completed",
                     {"products": [{"category": "books"}], "order_id": "o1"})
        client.page(f"lib-{use_gzip}", category="docs", name="/pricing")
        client.flush()  # blocks until the library's own thread has uploaded the queue
        client.shutdown()
    welcomes = [a for a in collector.actions if a.action == "welcome-books"]
    assert len(welcomes) == 2
    assert {a.recipient for a in welcomes} == {"libfalse@example.com", "libtrue@example.com"}
    assert collector.runtime.pipeline.metrics.events["clickstream"] == 6


def test_authentication_validation_and_limits(collector: Collector) -> None:
    url = f"{collector.url}/v1/track"
    good = orjson.dumps(call(event="Product Viewed"))
    assert post(url, good)[0] == 200
    assert post(url, good, key=None)[0] == 401
    assert post(url, good, key="wrong")[0] == 401
    # A single call the client must fix is a 400 naming the field, in the body clients parse.
    status, body = post(url, orjson.dumps(call(event=42)))
    assert status == 400 and body["code"] == "invalid_event" and body["field"] == "$.event"
    assert "`$.event`" in body["message"]
    status, body = post(url, b"{not json")
    assert (status, body["code"], body["field"]) == (400, "invalid_json", "$")
    huge = orjson.dumps(call(event="X", properties={"blob": "x" * 40_000}))
    assert post(url, huge)[1]["code"] == "too_large"
    assert post(url, huge)[0] == 413
    big_batch = {"batch": [call(type="track", event="X", properties={"b": "x" * 20_000})
                           for _ in range(30)]}
    assert post(f"{collector.url}/v1/batch", orjson.dumps(big_batch))[0] == 413
    gz = gzip.compress(good)
    assert post(url, gz, {"Content-Encoding": "gzip"})[0] == 200
    bomb = gzip.compress(b" " * 50_000_000)  # 50 MB of spaces in ~50 KB
    assert post(url, bomb, {"Content-Encoding": "gzip"})[0] == 413
    assert post(url, b"plain", {"Content-Encoding": "gzip"})[1]["code"] == "invalid_encoding"
    # A call without a timestamp happened when it was received (as in Segment).
    no_time = orjson.dumps({"messageId": "nt-1", "userId": "u9", "event": "Signed Up"})
    assert post(url, no_time)[0] == 200


def test_every_error_is_a_json_body_with_code_and_message(collector: Collector) -> None:
    """What rudder-sdk-python and others parse: `code` and `message` on every non-2xx."""
    good = orjson.dumps(call(event="Product Viewed"))
    status, body, headers = request(f"{collector.url}/v1/track", good, key=None)
    assert (status, body["code"]) == (401, "unauthorized")
    assert headers["WWW-Authenticate"].startswith("Basic")
    status, body, _ = request(f"{collector.url}/v1/nowhere", good)
    assert (status, body["code"], body["success"]) == (404, "not_found", False)
    assert "/v1/nowhere" in body["message"]
    status, body, headers = request(f"{collector.url}/v1/track", method="GET")
    assert (status, body["code"]) == (405, "method_not_allowed") and "POST" in headers["Allow"]
    status, body, _ = request(f"{collector.url}/v1/track", good,
                              {"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, body["code"]) == (415, "unsupported_media_type")
    # Segment's browser library posts JSON as text/plain, to spare a CORS preflight.
    assert post(f"{collector.url}/v1/track", good,
                {"Content-Type": "text/plain;charset=UTF-8"})[0] == 200
    status, body, _ = request(f"{collector.url}/v1/webhooks/email", b"[]", key=None)
    assert (status, body["code"]) == (401, "bad_signature")
    status, body, _ = request(f"{collector.url}/v1/batch", b'{"batch": {}}')
    assert (status, body["code"], body["field"]) == (400, "invalid_body", "$.batch")
    many = orjson.dumps({"batch": [{}] * 2501})
    status, body, _ = request(f"{collector.url}/v1/batch", many)
    assert (status, body["code"], body["field"]) == (413, "too_large", "$.batch")
    assert collector.dead == []  # a refused request leaves no dead letters


def test_one_bad_call_in_a_batch_of_twenty_keeps_the_nineteen(collector: Collector) -> None:
    calls = [call(type="track", userId=f"b{i}", event="Product Viewed") for i in range(20)]
    del calls[3]["event"]
    calls[7] = "not an object"  # type: ignore[call-overload]
    calls[11]["type"] = "hologram"
    calls[15]["properties"] = {"blob": "x" * 40_000}
    status, body = post(f"{collector.url}/v1/batch", orjson.dumps({"batch": calls}))
    assert status == 200 and body["success"] is True and body["accepted"] == 16
    assert [(r["index"], r["code"], r["field"]) for r in body["rejected"]] == [
        (3, "invalid_event", "$.batch[3].event"),
        (7, "not_an_object", "$.batch[7]"),
        (11, "unsupported_type", "$.batch[11].type"),
        (15, "too_large", "$.batch[15]"),
    ]
    assert collector.runtime.pipeline.metrics.events["clickstream"] == 16
    letters = {d.key: d for d in collector.dead}
    assert set(letters) == {"b3", "b11", "b15", None}  # keyed as the call would have been
    assert letters["b3"].reason.startswith("schema violation: ")
    assert letters["b3"].reason.endswith("- at `$.batch[3].event`")
    assert letters["b3"].topic == "clickstream"
    assert orjson.loads(letters["b3"].original())["userId"] == "b3"  # replayable once repaired
    assert letters[None].original() == b'"not an object"'
    assert collector.runtime.pipeline.metrics.dead_letters["schema violation"] == 3
    assert collector.runtime.pipeline.metrics.dead_letters["too large"] == 1


def test_email_webhook_verifies_the_providers_ecdsa_signature(collector: Collector) -> None:
    url = f"{collector.url}/v1/webhooks/email"
    events = [{"event": "click", "email": f"Hook{i}@Example.com", "timestamp": int(time.time()),
               "sg_event_id": f"sg-{i}", "url": "https://x"} for i in range(3)]
    body = orjson.dumps(events)
    headers = sendgrid_headers(body)
    assert post(url, body, headers, key=None) == (
        200, {"success": True, "accepted": 3, "rejected": []})
    assert sum(a.action == "related-content" for a in collector.actions) == 3
    tampered = body.replace(b"click", b"spamreport", 1)
    assert post(url, tampered, headers, key=None)[0] == 401
    stale = sendgrid_headers(body, str(int(time.time()) - 3600))
    assert post(url, body, stale, key=None)[1]["code"] == "bad_signature"
    assert post(url, body, {}, key=None)[0] == 401


def test_social_webhook_verifies_an_hmac_signature(collector: Collector) -> None:
    url = f"{collector.url}/v1/webhooks/social"
    body = orjson.dumps({"event_id": "s-1", "network": "twitter", "action": "mention",
                         "handle": "@fan", "timestamp": int(time.time()), "text": "hi"})
    headers = social_headers(body)
    assert post(url, body, headers, key=None)[0] == 200
    assert [a.action for a in collector.actions if a.rule_id == "social-mention-follow-up"] == [
        "answer-social"]
    headers["X-Kairos-Signature"] = "sha256=" + "0" * 64
    assert post(url, body, headers, key=None)[0] == 401
    bad = orjson.dumps({"event_id": "s-2", "network": "twitter", "action": "wink",
                        "handle": "@fan", "timestamp": int(time.time())})
    status, answer = post(url, bad, social_headers(bad), key=None)
    assert (status, answer["code"], answer["field"]) == (400, "unsupported_type", "$.action")


def test_kairos_run_over_http_serves_the_embedded_engine(tmp_path: Path) -> None:
    env = {**os.environ, "KAIROS_WRITE_KEYS": KEY, "KAIROS_POLICY": str(UNLIMITED_POLICY)}
    proc, base = kairos_run_http(env, "--data-dir", str(tmp_path / "state"), stdout=subprocess.PIPE)
    try:
        url = f"{base}/v1"
        assert post(f"{url}/identify", orjson.dumps(call(traits={"email": "h@example.com"})))[0] == 200
        order = call(event="Order Completed",
                     properties={"products": [{"category": "books"}], "order_id": "o1"})
        assert post(f"{url}/track", orjson.dumps(order))[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    actions = [orjson.loads(line) for line in out.splitlines()]
    assert [(a["action"], a["recipient"]) for a in actions] == [("welcome-books", "h@example.com")]
