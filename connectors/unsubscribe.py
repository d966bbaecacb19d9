"""One-click unsubscribe (RFC 8058): the links marketing email carries, and what the collector
makes of them.

Sending: every marketing email gets a token signed for its contact, its subscription group (the
action's, or the whole email channel) and its address, good for `KAIROS_UNSUBSCRIBE_DAYS`; the
`List-Unsubscribe` header names it as an https URL on the collector and as a mailto address,
`List-Unsubscribe-Post` says the URL takes a one-click POST, and the body carries the same URL.

Receiving: `POST /v1/unsubscribe/<token>` with the form body `List-Unsubscribe=One-Click` (what
a mailbox provider sends when the person clicks its unsubscribe button) becomes an email
`unsubscribe` (or `group_unsubscribe`) event for the token's contact, through the collector's
sink like every other event, so consent is withdrawn in state before the next decision. The
event id is derived from the token: a repeated POST is a duplicate the engine ignores.
`GET` on the same URL only shows a page whose button makes that POST, since mail scanners
follow links.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from connectors.intake import Accepted, Rejected, judge, only
from connectors.links import Signer
from engine.config import Settings
from engine.errors import SettingsError
from engine.model.actions import Action
from engine.model.events import epoch

__all__ = ["ONE_CLICK", "PURPOSE", "UnsubscribeLinks", "unsubscribe_routes"]

PURPOSE = "unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"
MAX_FORM = 1024  # bytes: the one-click body is 26
DAY = 86400.0
LOCAL = ("http://127.0.0.1", "http://localhost")  # plain http only for a collector on loopback


class EventSink(Protocol):
    async def accept(self, events: Sequence[Accepted]) -> None: ...


class UnsubscribeLinks:
    """The sending side: a token, URL and headers per marketing email."""

    def __init__(self, signer: Signer, public_url: str, mailto_domain: str, days: float) -> None:
        self.signer, self.base = signer, public_url.rstrip("/")
        self.domain, self.ttl = mailto_domain, days * DAY

    @classmethod
    def from_settings(cls, settings: Settings) -> UnsubscribeLinks:
        """Marketing email cannot go out without these: refuse to start rather than send it."""
        url = settings.public_url
        if not url.startswith("https://") and not url.startswith(LOCAL):
            raise SettingsError("KAIROS_PUBLIC_URL must be the collector's https:// base URL "
                                f"(marketing email needs its unsubscribe link), got {url!r}")
        if not settings.unsubscribe_domain:
            raise SettingsError("KAIROS_UNSUBSCRIBE_DOMAIN must name the domain of the mailto "
                                "unsubscribe address")
        if not settings.unsubscribe_days > 0:
            raise SettingsError("KAIROS_UNSUBSCRIBE_DAYS must be positive")
        return cls(Signer(settings.link_secret), url, settings.unsubscribe_domain,
                   settings.unsubscribe_days)

    def token(self, action: Action) -> str:
        """Signed for the contact, its address and the action's group (none: the channel),
        valid for `days` from the decision: the same token for the same action, so the
        headers and the body's link (rendered apart) are one link."""
        group = action.group if isinstance(action.group, str) else ""
        data = f"{action.recipient or ''}\n{group}"  # no address holds a line break
        return self.signer.sign(PURPOSE, action.contact_id, data,
                                epoch(action.decided_at) + self.ttl)

    def template_links(self, action: Action) -> dict[str, str]:
        """What the templates see as `links`: an unsubscribe link for marketing only."""
        if action.action_class != "marketing":
            return {}
        return {"unsubscribe": self.unsubscribe_url(action)}

    def unsubscribe_url(self, action: Action) -> str:
        """The https link for the email's body (the template renderer's `unsubscribe_url`)."""
        return self.url(self.token(action))

    def url(self, token: str) -> str:
        return f"{self.base}/v1/unsubscribe/{token}"

    def headers(self, token: str) -> dict[str, str]:
        """RFC 8058's two headers, the same token in the URL and the mailto's subject (a token
        is longer than the 64 octets RFC 5321 allows the local part of an address)."""
        return {"List-Unsubscribe":
                f"<{self.url(token)}>, <mailto:unsubscribe@{self.domain}?subject={token}>",
                "List-Unsubscribe-Post": ONE_CLICK}


@dataclass(frozen=True)
class _Request:
    """A verified unsubscribe token: whom, which group, which address."""

    contact: str
    group: str
    address: str

    @property
    def what(self) -> str:
        return f"the {self.group!r} emails" if self.group else "our marketing email"


def unsubscribe_routes(sink: EventSink, signer: Signer | None, email_groups: Mapping[str, int],
                       clock: Callable[[], float]) -> list[web.RouteDef]:
    """`GET` and `POST /v1/unsubscribe/{token}` for the collector."""

    def verified(request: web.Request) -> tuple[str, _Request]:
        if signer is None:
            raise Rejected(404, "not_found", "unsubscribe links are not configured on this "
                                             "collector (KAIROS_LINK_SECRET)")
        token = request.match_info["token"]
        link = signer.verify(PURPOSE, token, clock())
        address, _, group = link.data.partition("\n")
        if not address:
            raise Rejected(400, "invalid_token", "the unsubscribe link names no address")
        return token, _Request(link.subject, group, address)

    async def confirm(request: web.Request) -> web.Response:
        try:
            _, who = verified(request)
        except Rejected as exc:
            return _page(exc.status, "This link does not work", str(exc))
        return _page(200, "Unsubscribe", f"Stop {who.what} to this address?",
                     '<form method="post"><input type="hidden" name="List-Unsubscribe" '
                     'value="One-Click"><button type="submit">Unsubscribe</button></form>')

    async def one_click(request: web.Request) -> web.Response:
        token, who = verified(request)
        if request.content_length is not None and request.content_length > MAX_FORM:
            raise Rejected(413, "too_large", f"body larger than {MAX_FORM} bytes", "$")
        form = await request.post()
        if form.get("List-Unsubscribe") != "One-Click":
            raise Rejected(400, "invalid_body", f"expected the form body {ONE_CLICK} (RFC 8058)",
                           "List-Unsubscribe")
        await sink.accept([only(judge("email", _event(token, who, email_groups, clock()),
                                      "$", 0))])
        if "text/html" in request.headers.get("Accept", ""):
            return _page(200, "Unsubscribed", f"You will not receive {who.what} any more.")
        return web.json_response({"success": True, "unsubscribed": who.group or "email"})

    path = "/v1/unsubscribe/{token}"
    return [web.get(path, confirm, allow_head=False), web.post(path, one_click)]


def _event(token: str, who: _Request, email_groups: Mapping[str, int],
           now: float) -> dict[str, Any]:
    """The email event the engine already understands, sent straight to the token's contact.

    A group is the provider's unsubscribe group id (`[email_groups]` in the policy, or a
    numeric name); a group with no id cannot be named in an email event, so the person's
    request is honoured for the whole email channel.
    """
    gid = email_groups.get(who.group) if who.group else None
    if gid is None and who.group.isdigit():
        gid = int(who.group)
    event: dict[str, Any] = {
        "event": "unsubscribe" if gid is None else "group_unsubscribe",
        "email": who.address, "timestamp": now, "kairos_contact_id": who.contact,
        "sg_event_id": "unsub-" + hashlib.blake2b(token.encode(), digest_size=12).hexdigest(),
    }
    if gid is not None:
        event["asm_group_id"] = gid
    return event


def _page(status: int, title: str, message: str, form: str = "") -> web.Response:
    """A small page for a person's browser; nothing on it but what it says."""
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width"><title>{html.escape(title)}</title></head><body>'
            f"<main><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{form}</main>"
            "</body></html>")
    return web.Response(status=status, text=body, content_type="text/html")
