"""The web channel's reads on the collector: a contact's latest action, and only to whom it is for.

    GET /v1/contacts/{id}/next-best-action       the site's server, with a secret read key
    GET /v1/visitors/next-best-action            a browser, for itself: `anonymousId` or
        ?anonymousId=…|userId=…[&token=…]        `userId` and a visitor token the site's
        X-Kairos-Visitor-Token: <token>          server signed (connectors/visitor_tokens.py)

Write keys are public (they sit in the site's JavaScript), so they never read; a contact id is
no credential either. The visitor endpoint answers CORS for the configured site origins, its
401s included, so the page can tell an expired token from a missing action.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from typing import Protocol

from aiohttp import web

from connectors import visitor_tokens
from connectors.intake import Rejected
from connectors.signatures import authorize_read

__all__ = ["CONTACT_PATH", "TOKEN_HEADER", "VISITOR_PATH", "WebReads", "mount"]

CONTACT_PATH = "/v1/contacts/{contact}/next-best-action"
VISITOR_PATH = "/v1/visitors/next-best-action"
TOKEN_HEADER = "X-Kairos-Visitor-Token"


class WebReads(Protocol):
    """Where a runtime keeps the web channel's latest actions and who they are for."""

    async def latest(self, contact_id: str) -> bytes | None:
        """The contact's latest unexpired web action (its JSON), if any."""

    async def contact_of(self, identifier: str) -> str | None:
        """The contact an `anon:…` or `user:…` identifier names now, if any."""


def mount(app: web.Application, web_reads: WebReads | None, read_keys: Set[str],
          token_secret: str, token_max_age: float, origins: Set[str],
          clock: Callable[[], float]) -> None:
    """Add both read endpoints (and the visitor endpoint's CORS) to the collector's app."""

    def configured() -> WebReads:
        if web_reads is None:
            raise Rejected(404, "not_found", "the web channel is not configured on this collector")
        return web_reads

    async def answer(contact: str | None) -> web.Response:
        found = await configured().latest(contact) if contact is not None else None
        if found is None:
            raise Rejected(404, "not_found", "no current action for this contact")
        return web.Response(body=found, content_type="application/json")

    async def by_contact(request: web.Request) -> web.Response:
        authorize_read(request.headers, read_keys)
        return await answer(request.match_info["contact"])

    async def by_visitor(request: web.Request) -> web.Response:
        given = [(name, request.query[name]) for name in visitor_tokens.KINDS
                 if request.query.get(name)]
        if len(given) != 1:
            raise Rejected(400, "invalid_request",
                           "name the visitor with exactly one of `anonymousId` or `userId`",
                           "anonymousId")
        name, value = given[0]
        identifier = f"{visitor_tokens.KINDS[name]}:{value}"
        token = request.headers.get(TOKEN_HEADER) or request.query.get("token")
        visitor_tokens.verify(token_secret, identifier, token, clock(), token_max_age)
        return await answer(await configured().contact_of(identifier))

    async def preflight(_: web.Request) -> web.Response:
        return web.Response(status=204)

    async def cors(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if request.path != VISITOR_PATH or origin not in origins:
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET"
            response.headers["Access-Control-Allow-Headers"] = TOKEN_HEADER
            response.headers["Access-Control-Max-Age"] = "600"

    app.router.add_get(CONTACT_PATH, by_contact)
    app.router.add_get(VISITOR_PATH, by_visitor)
    app.router.add_route("OPTIONS", VISITOR_PATH, preflight)
    app.on_response_prepare.append(cors)
