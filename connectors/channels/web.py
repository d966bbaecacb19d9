"""Web / in-app: the latest unexpired next best action per contact, in Redis, for websites and
call-centre screens (`GET /v1/contacts/{id}/next-best-action` on the collector), with
`content`: what the action's `web.json` template rendered."""

from __future__ import annotations

from datetime import datetime

import msgspec
import orjson
from redis.asyncio import Redis

from connectors.templates import Library
from engine.keys import latest_action_key
from engine.model.actions import Action

# Replace only with a newer decision, and expire with the action: one round trip, atomic.
NEWER = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['decided_at'] > ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[3])
return 1
"""


class WebChannel:
    name = "web"
    provider = "redis-web"
    resend_safe = True  # the latest action per contact: writing it again changes nothing

    def __init__(self, redis: Redis, templates: Library) -> None:
        self.redis, self.templates = redis, templates
        self._newer = redis.register_script(NEWER)

    async def send(self, action: Action) -> None:
        expires_ms = int(datetime.fromisoformat(
            action.expires_at.replace("Z", "+00:00")).timestamp() * 1000)
        stored = orjson.dumps({**msgspec.to_builtins(action),
                               "content": self.templates.content(action)})
        await self._newer(keys=[latest_action_key(action.contact_id)],
                          args=[stored, action.decided_at, expires_ms])


async def latest_action(redis: Redis, contact_id: str) -> bytes | None:
    value = await redis.get(latest_action_key(contact_id))
    return value.encode() if isinstance(value, str) else value
