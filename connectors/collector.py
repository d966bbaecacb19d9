"""The HTTP collector: live events in, Segment-compatible, plus email and social webhooks.

    POST /v1/track | /v1/page | /v1/identify | /v1/batch   Segment HTTP tracking API
    POST /v1/webhooks/email                                email-provider event webhook (ECDSA)
    POST /v1/webhooks/social                               social interactions (HMAC-SHA256)
    GET  /v1/contacts/{id}/next-best-action                the web channel's latest action
    GET  /health

Every event is validated with the engine's own decoders before it is accepted, so a bad one is a
400 naming its field (`$.batch[3].timestamp`) rather than a dead letter later. What is accepted
goes to a sink: the embedded engine directly, or Kafka with `acks=all`, answering 200 only once
the broker has acknowledged and 503 when it cannot, so senders retry and nothing accepted is lost.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from engine.errors import DecodeError
from engine.model.events import Source, decode, iso

MAX_EVENT = 32 * 1024
MAX_BATCH = 500 * 1024
MAX_WEBHOOK = 1024 * 1024
SIGNATURE_TOLERANCE = 300.0  # seconds a webhook signature stays valid
SEGMENT_TYPES = {"track", "page", "identify"}


class Unavailable(Exception):
    """The sink cannot take events now (broker down): the sender must retry (503)."""


@dataclass(frozen=True, slots=True)
class Accepted:
    source: Source
    key: str
    value: bytes


class Sink(Protocol):
    async def accept(self, events: Sequence[Accepted]) -> None: ...


WebLookup = Callable[[str], Awaitable[bytes | None]]


@dataclass(frozen=True)
class CollectorConfig:
    write_keys: frozenset[str]
    sendgrid_public_key: str = ""
    social_webhook_secret: str = ""


class Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def collector_app(sink: Sink, config: CollectorConfig, web_lookup: WebLookup | None = None,
                  clock: Callable[[], float] = time.time) -> web.Application:
    # We inflate gzip bodies ourselves, with a bound, so a zip bomb is a 413 and not a crash.
    app = web.Application(client_max_size=MAX_WEBHOOK + 1,
                          handler_args={"auto_decompress": False})

    async def segment(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        _authenticate(request, config)
        body = await _body(request, MAX_BATCH if kind == "batch" else MAX_EVENT)
        payload = _json(body)
        now = iso(clock())
        if kind == "batch":
            items = payload.get("batch") if isinstance(payload, dict) else None
            if not isinstance(items, list):
                raise Rejected(400, "expected an object with a `batch` array - at `$.batch`")
            events = [_segment_event(item, None, now, f"$.batch[{i}]")
                      for i, item in enumerate(items)]
        else:
            events = [_segment_event(payload, kind, now, "$")]
        await _accept(sink, events)
        return web.json_response({"success": True})

    async def email_webhook(request: web.Request) -> web.Response:
        body = await _body(request, MAX_WEBHOOK)
        _verify_ecdsa(request, body, config.sendgrid_public_key, clock())
        items = _json(body)
        if not isinstance(items, list):
            raise Rejected(400, "expected a JSON array of events - at `$`")
        events = []
        for i, item in enumerate(items):
            raw = orjson.dumps(item)
            ev = _validated("email", raw, f"$[{i}]")
            events.append(Accepted("email", ev.email or "", raw))
        await _accept(sink, events)
        return web.json_response({"success": True, "accepted": len(events)})

    async def social_webhook(request: web.Request) -> web.Response:
        body = await _body(request, MAX_WEBHOOK)
        _verify_hmac(request, body, config.social_webhook_secret, clock())
        payload = _json(body)
        items = payload if isinstance(payload, list) else [payload]
        events = []
        for i, item in enumerate(items):
            raw = orjson.dumps(item)
            ev = _validated("social", raw, f"$[{i}]" if isinstance(payload, list) else "$")
            events.append(Accepted("social", ev.handle or "", raw))
        await _accept(sink, events)
        return web.json_response({"success": True, "accepted": len(events)})

    async def next_best_action(request: web.Request) -> web.Response:
        _authenticate(request, config)
        if web_lookup is None:
            raise Rejected(404, "the web channel is not configured on this collector")
        found = await web_lookup(request.match_info["contact"])
        if found is None:
            return web.json_response({"action": None}, status=404)
        return web.Response(body=found, content_type="application/json")

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_post("/v1/{kind:track|page|identify|batch}", _guard(segment))
    app.router.add_post("/v1/webhooks/email", _guard(email_webhook))
    app.router.add_post("/v1/webhooks/social", _guard(social_webhook))
    app.router.add_get("/v1/contacts/{contact}/next-best-action", _guard(next_best_action))
    app.router.add_get("/health", health)
    return app


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guard(handler: Handler) -> Handler:
    """Every refusal is a JSON 4xx (or a 503 to retry); nothing the client sends can make a 500."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Rejected as exc:
            headers = {"WWW-Authenticate": 'Basic realm="kairos"'} if exc.status == 401 else None
            return web.json_response({"success": False, "error": str(exc)}, status=exc.status,
                                     headers=headers)
        except Unavailable as exc:
            return web.json_response({"success": False, "error": f"try again: {exc}"},
                                     status=503, headers={"Retry-After": "1"})

    return wrapped


def _authenticate(request: web.Request, config: CollectorConfig) -> None:
    """Segment's write-key scheme: HTTP basic auth, the key as user name, no password."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Rejected(401, "missing write key (HTTP basic auth, the write key as user name)")
    try:
        user = base64.b64decode(value, validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        raise Rejected(401, "malformed basic auth header") from None
    if not any(hmac.compare_digest(user.encode(), key.encode()) for key in config.write_keys):
        raise Rejected(401, "unknown write key")


async def _body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit and \
            request.headers.get("Content-Encoding", "").lower() != "gzip":
        raise Rejected(413, f"body larger than {limit} bytes")
    raw = await request.read()
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            raw = inflater.decompress(raw, limit + 1)  # bounded: a zip bomb stops here
        except zlib.error:
            raise Rejected(400, "Content-Encoding gzip, but the body is not gzip") from None
    if len(raw) > limit:
        raise Rejected(413, f"body larger than {limit} bytes")
    return raw


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejected(400, f"invalid JSON: {exc}") from None


def _segment_event(item: Any, kind: str | None, received: str, path: str) -> Accepted:
    if not isinstance(item, dict):
        raise Rejected(400, f"expected an object - at `{path}`")
    call = dict(item)
    if kind is not None:
        call["type"] = kind
    call.setdefault("timestamp", received)  # Segment: a call without one happened on receipt
    call.setdefault("receivedAt", received)
    raw = orjson.dumps(call)
    if len(raw) > MAX_EVENT:
        raise Rejected(413, f"event larger than {MAX_EVENT} bytes - at `{path}`")
    ev = _validated("clickstream", raw, path)
    return Accepted("clickstream", ev.user_id or ev.anonymous_id or "", raw)


def _validated(source: Source, raw: bytes, path: str) -> Any:
    try:
        return decode(source, raw)
    except DecodeError as exc:
        raise Rejected(400, str(exc).replace("`$", f"`{path}", 1)) from None


async def _accept(sink: Sink, events: list[Accepted]) -> None:
    if events:
        await sink.accept(events)


def _verify_hmac(request: web.Request, body: bytes, secret: str, now: float) -> None:
    """`X-Kairos-Signature: sha256=<hex HMAC of "<timestamp>.<body>">`, fresh timestamp."""
    if not secret:
        raise Rejected(401, "social webhook secret not configured: every request is refused")
    stamp = request.headers.get("X-Kairos-Timestamp", "")
    given = request.headers.get("X-Kairos-Signature", "").removeprefix("sha256=")
    _fresh(stamp, now)
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode()):
        raise Rejected(401, "bad signature")


def _verify_ecdsa(request: web.Request, body: bytes, public_key: str, now: float) -> None:
    """The email provider signs timestamp + payload with ECDSA (P-256, SHA-256)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    if not public_key:
        raise Rejected(401, "email webhook public key not configured: every request is refused")
    stamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
    signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
    _fresh(stamp, now)
    try:
        key = load_der_public_key(base64.b64decode(public_key))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise Rejected(401, "the configured webhook key is not an elliptic-curve key")
        key.verify(base64.b64decode(signature), stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        raise Rejected(401, "bad signature") from None


def _fresh(stamp: str, now: float) -> None:
    try:
        t = float(stamp)
    except ValueError:
        raise Rejected(401, "missing or malformed signature timestamp") from None
    if abs(now - t) > SIGNATURE_TOLERANCE:
        raise Rejected(401, f"stale signature (more than {SIGNATURE_TOLERANCE:.0f} s off)")
