"""The HTTP collector: live events in, Segment-compatible, plus email and social webhooks.

    POST /v1/track|page|screen|identify|group|alias   one Segment call (HTTP tracking API)
    POST /v1/batch                                   Segment calls in a `batch` array
    POST /v1/webhooks/email (= /v1/webhooks/email/sendgrid)   SendGrid event webhook (ECDSA)
    POST /v1/webhooks/email/mailgun                  Mailgun event webhook (HMAC-SHA256)
    POST /v1/webhooks/social                         social interactions (HMAC-SHA256)
    POST /v1/catalogue                               catalogue items: one, or an array (write key)
    GET  /v1/contacts/{id}/next-best-action          the web channel's latest action (read key)
    GET  /v1/visitors/next-best-action               … for a browser itself (visitor token)
    POST /v1/unsubscribe/{token}                     one-click unsubscribe (RFC 8058)
    GET  /v1/unsubscribe/{token}                     its confirmation page
    GET  /v1/r/{token}                               a tracked SMS or push link: a click
    GET  /health

Every item is validated with the engine's own decoders before it is accepted. A batch or a
webhook is judged item by item, as Segment's API does: what decodes goes to the sink, what does
not goes to the dead-letter sink with its index and the field at fault, and the answer is a 200
that counts both. Only what the sender must fix for the whole request is a 4xx, and every error
answer is JSON with `code`, `message` and, where one field is at fault, `field`. What is
accepted goes to a sink: the embedded engine, or Kafka with `acks=all`, answering 200 only once
the broker has acknowledged and 503 when it cannot, so senders retry and nothing accepted is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from connectors import mailgun, web_reads
from connectors.intake import (
    MAX_BATCH,
    MAX_BATCH_EVENTS,
    MAX_EVENT,
    MAX_WEBHOOK,
    Accepted,
    Refused,
    Rejected,
    Unavailable,
    Verdict,
    judge,
    only,
    parse_json,
    read_body,
)
from connectors.links import Signer
from connectors.signatures import authenticate, verify_ecdsa, verify_hmac
from connectors.tracked_links import LinkError, open_link_token
from connectors.unsubscribe import unsubscribe_routes
from connectors.web_reads import WebReads
from engine.model.events import iso

__all__ = ["Accepted", "CollectorConfig", "Refused", "Sink", "Unavailable", "WebReads",
           "collector_app"]

log = logging.getLogger(__name__)
SEGMENT_CALLS = ("track", "page", "screen", "identify", "group", "alias")
# Segment's libraries send JSON; its browser library sends it as text/plain (no CORS preflight).
JSON_TYPES = frozenset({"application/json", "text/plain"})


class Sink(Protocol):
    async def accept(self, events: Sequence[Accepted], refused: Sequence[Refused] = ()) -> None:
        """Take the good events and dead-letter the refused items, together, or raise
        `Unavailable`; nothing of the request counts as accepted until this returns."""


@dataclass(frozen=True)
class CollectorConfig:
    write_keys: frozenset[str]
    sendgrid_public_key: str = ""
    social_webhook_secret: str = ""
    mailgun_signing_key: str = ""
    # The web channel's reads (connectors/web_reads.py): never a write key.
    read_keys: frozenset[str] = frozenset()
    web_token_secret: str = ""
    web_token_max_age: float = 3600.0
    web_origins: frozenset[str] = frozenset()
    link_secret: str = ""  # signed links (unsubscribe, tracked links); without it they answer 404
    email_groups: dict[str, int] = field(default_factory=dict)  # the policy's, by name


def collector_app(sink: Sink, config: CollectorConfig, reads: WebReads | None = None,
                  clock: Callable[[], float] = time.time) -> web.Application:
    # We inflate gzip bodies ourselves, with a bound, so a zip bomb is a 413 and not a crash.
    app = web.Application(client_max_size=MAX_WEBHOOK + 1, middlewares=[json_errors],
                          handler_args={"auto_decompress": False})

    async def segment(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        _written(request, config.write_keys)
        payload = parse_json(await read_body(request, MAX_BATCH if kind == "batch" else MAX_EVENT))
        now = iso(clock())
        if kind != "batch":
            await sink.accept([only(_segment_call(payload, kind, now, "$", 0))])
            return web.json_response({"success": True})
        items = payload.get("batch") if isinstance(payload, dict) else None
        if not isinstance(items, list):
            raise Rejected(400, "invalid_body", "expected an object with a `batch` array",
                           "$.batch")
        if len(items) > MAX_BATCH_EVENTS:
            raise Rejected(413, "too_large",
                           f"{len(items)} calls in one batch, over the {MAX_BATCH_EVENTS} limit",
                           "$.batch")
        return await _settle(sink, [_segment_call(item, None, now, f"$.batch[{i}]", i)
                                    for i, item in enumerate(items)])

    async def catalogue(request: web.Request) -> web.Response:
        _written(request, config.write_keys)
        payload = parse_json(await read_body(request, MAX_BATCH))
        if not isinstance(payload, list):
            return await _settle(sink, [only(judge("catalogue", payload, "$", 0))])
        if len(payload) > MAX_BATCH_EVENTS:
            raise Rejected(413, "too_large",
                           f"{len(payload)} items in one request, over the {MAX_BATCH_EVENTS} "
                           "limit", "$")
        return await _settle(sink, [judge("catalogue", item, f"$[{i}]", i)
                                    for i, item in enumerate(payload)])

    async def sendgrid(request: web.Request) -> web.Response:
        body = await read_body(request, MAX_WEBHOOK)
        verify_ecdsa(request.headers, body, config.sendgrid_public_key, clock())
        items = parse_json(body)
        if not isinstance(items, list):
            raise Rejected(400, "invalid_body", "expected a JSON array of events", "$")
        return await _settle(sink, [judge("email", item, f"$[{i}]", i)
                                    for i, item in enumerate(items)])

    async def mailgun_webhook(request: web.Request) -> web.Response:
        payload = parse_json(await read_body(request, MAX_WEBHOOK))
        mailgun.verify(payload, config.mailgun_signing_key, clock())
        event = mailgun.normalise(payload.get("event-data"))
        return await _settle(sink, [judge("email", event, mailgun.EVENT_DATA, 0,
                                          renamed=mailgun.RENAMED)])

    async def social_webhook(request: web.Request) -> web.Response:
        body = await read_body(request, MAX_WEBHOOK)
        verify_hmac(request.headers, body, config.social_webhook_secret, clock())
        payload = parse_json(body)
        if not isinstance(payload, list):
            return await _settle(sink, [only(judge("social", payload, "$", 0))])
        return await _settle(sink, [judge("social", item, f"$[{i}]", i)
                                    for i, item in enumerate(payload)])

    async def tracked_link(request: web.Request) -> web.Response:
        """A click on a tracked link: a `clicked` outcome for its action, then the target."""
        if not config.link_secret:
            raise Rejected(404, "not_found", "tracked links are not configured on this collector")
        try:
            click = open_link_token(config.link_secret, request.match_info["token"],
                                    clock())
        except LinkError as exc:
            raise Rejected(404, "not_found", str(exc)) from None
        outcome = {"outcome_id": f"{click.action_id}:clicked", "action_id": click.action_id,
                   "contact_id": click.contact_id, "channel": click.channel,
                   "action": click.action, "outcome": "clicked", "timestamp": iso(clock())}
        await sink.accept([only(judge("outcome", outcome, "$", 0))])
        raise web.HTTPFound(click.target)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_post(f"/v1/{{kind:{'|'.join((*SEGMENT_CALLS, 'batch'))}}}", segment)
    for path in ("/v1/webhooks/email", "/v1/webhooks/email/sendgrid"):
        app.router.add_post(path, sendgrid)
    app.router.add_post("/v1/webhooks/email/mailgun", mailgun_webhook)
    app.router.add_post("/v1/webhooks/social", social_webhook)
    app.router.add_post("/v1/catalogue", catalogue)
    web_reads.mount(app, reads, config.read_keys, config.web_token_secret,
                    config.web_token_max_age, config.web_origins, clock)
    app.router.add_get("/v1/r/{token}", tracked_link)
    app.router.add_get("/health", health)
    signer = Signer(config.link_secret) if config.link_secret else None
    app.router.add_routes(unsubscribe_routes(sink, signer, config.email_groups, clock))
    return app


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal is a JSON 4xx (or a 503 to retry), unknown paths and methods included;
    nothing the client sends can make a 500."""
    try:
        return await handler(request)
    except Rejected as exc:
        # Reads take a read key as a Bearer token; everything else a write key as basic auth.
        scheme = "Bearer" if request.path.endswith("/next-best-action") else "Basic"
        headers = {"WWW-Authenticate": f'{scheme} realm="kairos"'} \
            if exc.code == "unauthorized" else None
        return _error(exc.status, exc.code, str(exc), exc.field, headers=headers)
    except Unavailable as exc:
        return _error(503, "unavailable", f"try again: {exc}", headers={"Retry-After": "1"})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, *_described(exc, request), headers=_kept(exc))
    except Exception:  # a bug of ours: still an answer a client can parse
        log.exception("collector failed on %s %s", request.method, request.path)
        return _error(500, "internal", "the collector failed on this request")


def _error(status: int, code: str, message: str, field: str | None = None,
           headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"success": False, "code": code, "message": message}
    if field is not None:
        body["field"] = field
    return web.json_response({**body, **extra}, status=status, headers=headers)


def _described(exc: web.HTTPException, request: web.Request) -> tuple[str, str]:
    """aiohttp's own refusals (no route, wrong method, body over its cap) as code and message."""
    if exc.status == 404:
        return "not_found", f"no endpoint {request.path}"
    if exc.status == 405:
        return "method_not_allowed", f"{request.method} is not allowed on {request.path}"
    if exc.status == 413:
        return "too_large", exc.text or exc.reason
    return "bad_request", exc.text or exc.reason


def _kept(exc: web.HTTPException) -> dict[str, str] | None:
    """The headers an aiohttp error must keep (405's `Allow`)."""
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None


def _written(request: web.Request, write_keys: frozenset[str]) -> None:
    """A write with one of the write keys, of JSON (or no Content-Type at all)."""
    authenticate(request.headers, write_keys)
    media = request.headers.get("Content-Type")
    if media is not None and request.content_type not in JSON_TYPES:
        raise Rejected(415, "unsupported_media_type",
                       f"Content-Type {request.content_type!r}: send application/json")


def _segment_call(item: Any, kind: str | None, received: str, path: str, index: int) -> Verdict:
    """A call as Segment takes it: the endpoint names its type, a call without a timestamp
    happened on receipt."""
    if isinstance(item, dict):
        item = dict(item)
        if kind is not None:
            item["type"] = kind
        item.setdefault("timestamp", received)
        item.setdefault("receivedAt", received)
    return judge("clickstream", item, path, index)


async def _settle(sink: Sink, verdicts: list[Verdict]) -> web.Response:
    """Good items to the sink, bad ones to its dead letters, in one acknowledged hand-over."""
    good = [v for v in verdicts if isinstance(v, Accepted)]
    bad = [v for v in verdicts if isinstance(v, Refused)]
    if good or bad:
        await sink.accept(good, bad)
    return web.json_response({"success": True, "accepted": len(good),
                              "rejected": [r.answer() for r in bad]})
