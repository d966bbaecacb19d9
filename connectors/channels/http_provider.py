"""Providers over HTTP: a generic JSON provider for SMS, push and CRM, and signed webhooks.

The generic provider POSTs `{to, text, content, action, action_id, contact_id, payload}` with
the configured Authorization header and `Idempotency-Key: <action id>`, which providers use to drop
a repeated request. 5xx, 429 and network errors are retried; any other 4xx is permanent (an
invalid number, an unregistered device token), which the engine answers with the rule's next
channel. `content` is what the action's template rendered (connectors/templates/): the SMS text
and its segment count, the push title, body and deep link, the CRM task's fields; `text` is the
SMS text or the push body. A template that fails to render is a permanent failure. With tracked
links configured, an SMS or push action's `payload.url` (and that URL wherever its rendered
content has it) becomes a signed redirect through the collector, which records the click.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import aiohttp
import orjson

from connectors.delivery import Permanent, Transient
from connectors.templates import Library
from connectors.tracked_links import LinkSigner
from engine.model import actions as action_codec
from engine.model.actions import Action


class HttpProvider:
    def __init__(self, name: str, url: str, auth: str = "", *, templates: Library | None,
                 session: aiohttp.ClientSession | None = None,
                 links: LinkSigner | None = None) -> None:
        if not url:
            raise ValueError(f"channel {name!r}: no provider URL configured")
        self.name, self.url, self.auth, self.links = name, url, auth, links
        self.templates = templates
        self.provider = f"http:{url}"
        self.resend_safe = True  # Idempotency-Key: the provider drops a repeat
        self._session = session

    def body(self, action: Action) -> bytes:
        content = self.templates.content(action) if self.templates else {}
        payload, target = action.payload, action.payload.get("url")
        if self.links is not None and isinstance(target, str):
            tracked = self.links.track(action, target, time.time())
            payload = {**payload, "url": tracked}
            content = {k: v.replace(target, tracked) if isinstance(v, str) else v
                       for k, v in content.items()}
        return orjson.dumps({
            "to": action.recipient, "text": content.get("text", content.get("body")),
            "content": content, "action": action.action,
            "action_id": action.action_id, "contact_id": action.contact_id,
            "payload": payload,
        })

    def headers(self, action: Action, body: bytes) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Idempotency-Key": action.action_id}
        if self.auth:
            h["Authorization"] = self.auth
        return h

    async def send(self, action: Action) -> None:
        if self.name in ("sms", "push") and not action.recipient:
            raise Permanent(f"contact {action.contact_id} has no {self.name} address")
        body = self.body(action)
        session = self._session or aiohttp.ClientSession()
        try:
            async with session.post(self.url, data=body, headers=self.headers(action, body),
                                    timeout=aiohttp.ClientTimeout(total=10)) as r:
                if r.status < 300:
                    return
                detail = (await r.text())[:200]
                if r.status >= 500 or r.status == 429:
                    raise Transient(f"HTTP {r.status}: {detail}")
                raise Permanent(f"HTTP {r.status}: {detail}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if self._session is None:
                await session.close()


class Webhook(HttpProvider):
    """The whole action as JSON, signed: `X-Kairos-Signature: sha256=HMAC(secret, ts.body)`.

    It delivers the actions of one channel (`KAIROS_WEBHOOK_CHANNEL`, default crm) to a system of
    the customer's own, which renders them itself: no template.
    """

    def __init__(self, channel: str, url: str, secret: str,
                 session: aiohttp.ClientSession | None = None) -> None:
        super().__init__(channel, url, templates=None, session=session)
        if not secret:
            raise ValueError("webhook: no KAIROS_WEBHOOK_SECRET configured")
        self.secret = secret.encode()

    def body(self, action: Action) -> bytes:
        return action_codec.encode(action)

    def headers(self, action: Action, body: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        mac = hmac.new(self.secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return {**super().headers(action, body), "X-Kairos-Timestamp": stamp,
                "X-Kairos-Signature": f"sha256={mac}"}
