"""Providers over HTTP: a generic JSON provider for SMS, push and CRM, and signed webhooks.

The generic provider POSTs `{to, text, action, action_id, contact_id, payload}` with the
configured Authorization header and `Idempotency-Key: <action id>`, which providers use to drop
a repeated request. 5xx, 429 and network errors are retried; any other 4xx is permanent (an
invalid number, an unregistered device token), which the engine answers with the rule's next
channel. With tracked links configured, an SMS or push action's `payload.url` (and that URL in
its text) becomes a signed redirect through the collector, which records the click.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import aiohttp
import orjson

from connectors.delivery import Permanent, Transient
from connectors.tracked_links import LinkSigner
from engine.model import actions as action_codec
from engine.model.actions import Action


class HttpProvider:
    def __init__(self, name: str, url: str, auth: str = "", *,
                 session: aiohttp.ClientSession | None = None,
                 links: LinkSigner | None = None) -> None:
        if not url:
            raise ValueError(f"channel {name!r}: no provider URL configured")
        self.name, self.url, self.auth, self.links = name, url, auth, links
        self.provider = f"http:{url}"
        self.resend_safe = True  # Idempotency-Key: the provider drops a repeat
        self._session = session

    def body(self, action: Action) -> bytes:
        text, payload = action.payload.get("text") or action.action, action.payload
        target = payload.get("url")
        if self.links is not None and isinstance(target, str):
            tracked = self.links.track(action, target, time.time())
            payload = {**payload, "url": tracked}
            text = text.replace(target, tracked) if isinstance(text, str) else text
        return orjson.dumps({
            "to": action.recipient, "text": text, "action": action.action,
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
    the customer's own.
    """

    def __init__(self, channel: str, url: str, secret: str,
                 session: aiohttp.ClientSession | None = None) -> None:
        super().__init__(channel, url, session=session)
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
