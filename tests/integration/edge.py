"""A collector with the embedded engine behind it on a real loopback port, and its clients."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import threading
import time
from typing import Any

import aiohttp
import msgspec
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.collector import CollectorConfig, collector_app
from connectors.sinks import EmbeddedSink
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.model.state import ContactState
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.sdk.ruleset import RuleSet
from engine.testing import Scenario
from engine.testing.kafka import LINKS, free_port
from tests.helpers import open_policy

KEY = "wk_test_123"
SOCIAL_SECRET = "s3cret"
MAILGUN_KEY = "mg-signing-key-0123456789"
EMAIL_GROUPS = {"newsletter": 42}  # the email provider's unsubscribe groups, by name
LINK_SECRET = LINKS["KAIROS_LINK_SECRET"]  # signed links: unsubscribe and tracked links
PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC_B64 = base64.b64encode(PRIVATE.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


class Collector:
    """Serves on its own thread and loop; keeps every action and dead letter it produced."""

    def __init__(self) -> None:
        # The rule-author kit reads contacts; its runtime runs on the wall clock, as live input.
        policy = msgspec.structs.replace(open_policy(), email_groups=EMAIL_GROUPS)
        self.scenario = Scenario(policy=policy)
        self.actions: list[Action] = self.scenario.actions
        self.dead: list[DeadLetter] = self.scenario.dead_letters
        self.runtime = self.scenario.runtime = EmbeddedRuntime(
            Pipeline(RuleSet.load(), policy), on_action=self.actions.append,
            on_dead_letter=self.dead.append, clock="wall")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = collector_app(EmbeddedSink(self.runtime), CollectorConfig(
            frozenset({KEY}), PUBLIC_B64, SOCIAL_SECRET, MAILGUN_KEY,
            link_secret=LINK_SECRET, email_groups=EMAIL_GROUPS))
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self.loop.run_forever()

    def contact(self, identifier: str) -> ContactState:
        """The state the identifier (`user:u1`, `email:a@b.c`) resolves to."""
        return self.scenario.contact(identifier)

    def __enter__(self) -> Collector:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def request(url: str, body: bytes = b"", headers: dict[str, str] | None = None,
            key: str | None = KEY, method: str = "POST") -> tuple[int, dict[str, Any], Any]:
    """Status, JSON body and headers of one request (the write key as basic auth)."""
    async def go() -> tuple[int, dict[str, Any], Any]:
        h = {"Content-Type": "application/json", **(headers or {})}
        if key is not None:
            h["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        async with aiohttp.ClientSession() as s, s.request(method, url, data=body,
                                                            headers=h) as r:
            return r.status, orjson.loads(await r.read()), r.headers

    return asyncio.run(go())


def post(url: str, body: bytes, headers: dict[str, str] | None = None,
         key: str | None = KEY) -> tuple[int, dict[str, Any]]:
    status, answer, _ = request(url, body, headers, key)
    return status, answer


def call(**fields: object) -> dict[str, Any]:
    return {"messageId": f"m-{time.monotonic_ns()}", "userId": "u1",
            "timestamp": "2026-11-02T10:00:00Z", **fields}


def sendgrid_headers(body: bytes, stamp: str | None = None) -> dict[str, str]:
    """SendGrid's signed-webhook headers: ECDSA P-256 over timestamp + payload."""
    stamp = stamp or str(int(time.time()))
    signature = PRIVATE.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode()}


def social_headers(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    mac = hmac.new(SOCIAL_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return {"X-Kairos-Timestamp": stamp, "X-Kairos-Signature": f"sha256={mac.hexdigest()}"}


def mailgun_body(event: dict[str, Any], stamp: int | None = None, key: str = MAILGUN_KEY) -> bytes:
    """A Mailgun webhook request, signed as Mailgun's docs say: hex HMAC-SHA256 of timestamp
    and token, concatenated, under the webhook signing key."""
    ts = str(int(time.time()) if stamp is None else stamp)
    token = hashlib.sha256(ts.encode() + orjson.dumps(event)).hexdigest()[:50]
    signature = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return orjson.dumps({"signature": {"timestamp": ts, "token": token, "signature": signature},
                         "event-data": event})
