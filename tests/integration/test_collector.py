"""The HTTP collector on a real loopback port, fed by real clients and the Segment library."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.collector import CollectorConfig, collector_app
from connectors.sinks import EmbeddedSink
from engine.model.actions import Action
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet
from engine.testing import UNLIMITED_POLICY
from engine.testing.kafka import free_port
from tests.helpers import ROOT, open_policy

KEY = "wk_test_123"
SOCIAL_SECRET = "s3cret"
PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC_B64 = base64.b64encode(PRIVATE.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


class Collector:
    """A collector with the embedded engine behind it, serving on its own thread and loop."""

    def __init__(self) -> None:
        self.actions: list[Action] = []
        self.runtime = EmbeddedRuntime(Pipeline(RuleSet.load(), open_policy()),
                                       on_action=self.actions.append, clock="wall")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = collector_app(EmbeddedSink(self.runtime),
                            CollectorConfig(frozenset({KEY}), PUBLIC_B64, SOCIAL_SECRET))
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> Collector:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def post(url: str, body: bytes, headers: dict[str, str] | None = None,
         key: str | None = KEY) -> tuple[int, dict]:
    async def go() -> tuple[int, dict]:
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=h) as r:
            return r.status, await r.json()

    return asyncio.run(go())


def call(**fields: object) -> dict:
    return {"messageId": f"m-{time.monotonic_ns()}", "userId": "u1",
            "timestamp": "2026-11-02T10:00:00Z", **fields}


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
    status, body = post(url, orjson.dumps(call(event=42)))
    assert status == 400 and "`$.event`" in body["error"]
    batch = {"batch": [call(type="track", event="A"), call(type="track", event="B",
                                                          timestamp={"bad": 1})]}
    status, body = post(f"{collector.url}/v1/batch", orjson.dumps(batch))
    assert status == 400 and "`$.batch[1].timestamp`" in body["error"]
    assert post(url, b"{not json")[0] == 400
    huge = orjson.dumps(call(event="X", properties={"blob": "x" * 40_000}))
    assert post(url, huge)[0] == 413
    big_batch = {"batch": [call(type="track", event="X", properties={"b": "x" * 20_000})
                           for _ in range(30)]}
    assert post(f"{collector.url}/v1/batch", orjson.dumps(big_batch))[0] == 413
    gz = gzip.compress(good)
    assert post(url, gz, {"Content-Encoding": "gzip"})[0] == 200
    bomb = gzip.compress(b" " * 50_000_000)  # 50 MB of spaces in ~50 KB
    assert post(url, bomb, {"Content-Encoding": "gzip"})[0] == 413
    assert post(url, b"plain", {"Content-Encoding": "gzip"})[0] == 400
    # A call without a timestamp happened when it was received (as in Segment).
    no_time = orjson.dumps({"messageId": "nt-1", "userId": "u9", "event": "Signed Up"})
    assert post(url, no_time)[0] == 200


def sign_email(body: bytes, stamp: str) -> str:
    return base64.b64encode(PRIVATE.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def test_email_webhook_verifies_the_providers_ecdsa_signature(collector: Collector) -> None:
    url = f"{collector.url}/v1/webhooks/email"
    events = [{"event": "click", "email": f"Hook{i}@Example.com", "timestamp": int(time.time()),
               "sg_event_id": f"sg-{i}", "url": "https://x"} for i in range(3)]
    body = orjson.dumps(events)
    now = str(int(time.time()))
    headers = {"X-Twilio-Email-Event-Webhook-Timestamp": now,
               "X-Twilio-Email-Event-Webhook-Signature": sign_email(body, now)}
    assert post(url, body, headers, key=None) == (200, {"success": True, "accepted": 3})
    assert sum(a.action == "related-content" for a in collector.actions) == 3
    tampered = body.replace(b"click", b"spamreport", 1)
    assert post(url, tampered, headers, key=None)[0] == 401
    old = str(int(time.time()) - 3600)
    stale = {"X-Twilio-Email-Event-Webhook-Timestamp": old,
             "X-Twilio-Email-Event-Webhook-Signature": sign_email(body, old)}
    assert post(url, body, stale, key=None)[0] == 401
    assert post(url, body, {}, key=None)[0] == 401
    bad = orjson.dumps([{"event": "opened", "email": "a@b.c", "timestamp": 1,
                         "sg_event_id": "x"}])
    h2 = {"X-Twilio-Email-Event-Webhook-Timestamp": now,
          "X-Twilio-Email-Event-Webhook-Signature": sign_email(bad, now)}
    status, err = post(url, bad, h2, key=None)
    assert status == 400 and "`$[0].event`" in err["error"]


def test_social_webhook_verifies_an_hmac_signature(collector: Collector) -> None:
    url = f"{collector.url}/v1/webhooks/social"
    body = orjson.dumps({"event_id": "s-1", "network": "twitter", "action": "mention",
                         "handle": "@fan", "timestamp": int(time.time()), "text": "hi"})
    stamp = str(int(time.time()))
    mac = hmac.new(SOCIAL_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    headers = {"X-Kairos-Timestamp": stamp, "X-Kairos-Signature": f"sha256={mac.hexdigest()}"}
    assert post(url, body, headers, key=None)[0] == 200
    assert [a.action for a in collector.actions if a.rule_id == "social-mention-follow-up"] == [
        "answer-social"]
    headers["X-Kairos-Signature"] = "sha256=" + "0" * 64
    assert post(url, body, headers, key=None)[0] == 401


def test_kairos_run_over_http_serves_the_embedded_engine(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "KAIROS_WRITE_KEYS": KEY, "KAIROS_POLICY": str(UNLIMITED_POLICY)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "--http", f"127.0.0.1:{port}",
         "--data-dir", str(tmp_path / "state")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/v1"
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
