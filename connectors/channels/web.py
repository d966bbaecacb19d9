"""Web / in-app: the latest unexpired next best action per contact, for websites and call-centre
screens (connectors/web_reads.py serves it), with `content`: what the action's `web.json`
template rendered. In Redis behind `kairos connect web`, in memory inside `kairos run --http`."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import orjson
from redis.asyncio import Redis

from connectors.templates import Library
from engine.keys import latest_action_key, visitor_key
from engine.model import actions as action_codec
from engine.model.actions import Action
from engine.model.events import epoch

__all__ = ["MemoryWeb", "RedisWeb", "WebChannel", "latest_action"]

# Replace only with a newer decision, and expire with the action: one round trip, atomic.
NEWER = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['decided_at'] > ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[3])
return 1
"""
PRUNE_AT = 100_000  # contacts the embedded web channel holds before it drops expired actions


class WebChannel:
    name = "web"
    provider = "redis-web"
    resend_safe = True  # the latest action per contact: writing it again changes nothing

    def __init__(self, redis: Redis, templates: Library) -> None:
        self.redis, self.templates = redis, templates
        self._newer = redis.register_script(NEWER)

    async def send(self, action: Action) -> None:
        expires_ms = int(epoch(action.expires_at) * 1000)
        stored = orjson.dumps({**msgspec.to_builtins(action),
                               "content": self.templates.content(action)})
        await self._newer(keys=[latest_action_key(action.contact_id)],
                          args=[stored, action.decided_at, expires_ms])


async def latest_action(redis: Redis, contact_id: str) -> bytes | None:
    value = await redis.get(latest_action_key(contact_id))
    return value.encode() if isinstance(value, str) else value


class RedisWeb:
    """The Kafka collector's reads: actions from `WebChannel`, visitors from the identity
    mirror (connectors/visitor_mirror.py)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def latest(self, contact_id: str) -> bytes | None:
        return await latest_action(self.redis, contact_id)

    async def contact_of(self, identifier: str) -> str | None:
        value = await self.redis.get(visitor_key(identifier))
        return value.decode() if isinstance(value, bytes) else value


class MemoryWeb:
    """The embedded engine's web channel: its web actions kept as `WebChannel` keeps them,
    visitors resolved in the runtime's own identity table."""

    def __init__(self, identity: Callable[[str], bytes | None],
                 clock: Callable[[], float] = time.time) -> None:
        self.identity, self.clock = identity, clock
        self.actions: dict[str, tuple[str, float, bytes]] = {}  # contact -> decided, expiry, JSON
        self.prune_at = PRUNE_AT

    def remember(self, action: Action) -> None:
        """Keep a delivered web action unless a newer decision is already kept."""
        if action.channel != "web" or action.control_group:
            return
        current = self.actions.get(action.contact_id)
        if current is not None and current[0] > action.decided_at:
            return
        if len(self.actions) >= self.prune_at:  # drop the expired, then let it double
            now = self.clock()
            self.actions = {c: kept for c, kept in self.actions.items() if kept[1] > now}
            self.prune_at = max(PRUNE_AT, 2 * len(self.actions))
        self.actions[action.contact_id] = (action.decided_at, epoch(action.expires_at),
                                           action_codec.encode(action))

    async def latest(self, contact_id: str) -> bytes | None:
        kept = self.actions.get(contact_id)
        return kept[2] if kept is not None and kept[1] > self.clock() else None

    async def contact_of(self, identifier: str) -> str | None:
        record = self.identity(identifier)
        return record.decode() if record is not None else None
