"""Riding out a Redis outage: the connectors' idempotency records live there, so they wait for it.

A send is only made once its in-flight record is written, and is only done once its sent
record is written; while Redis cannot be reached every delivery that needs it waits (retrying
with a capped backoff) instead of sending without a record or giving the action up. The outage
is logged when it starts and when it ends, never per call; the counts are metrics. A wait is
bounded: past `limit` seconds `RedisUnavailable` stops the connector without committing, so
the actions are redelivered to it (or its replacement) when Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.errors import KairosError

log = logging.getLogger("kairos.connect")

T = TypeVar("T")
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
FIRST_RETRY = 0.1  # seconds before the first retry; doubles up to MAX_RETRY
MAX_RETRY = 2.0


class RedisUnavailable(KairosError):
    """Redis stayed unreachable longer than the connector may wait (`KAIROS_REDIS_OUTAGE_LIMIT`)."""


@dataclass
class RedisGate:
    """Runs Redis calls, waiting out an outage; `waiting` and `up` are exported as metrics."""

    limit: float = 600.0  # seconds one call may wait for Redis before the connector stops
    up: bool = True
    waiting: int = 0  # calls blocked on Redis right now
    errors: int = 0  # failed attempts, all outages together
    outages: int = 0
    lost_at: float = 0.0

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """`await op()`, retried until Redis answers or `limit` seconds have passed."""
        started: float | None = None
        delay = FIRST_RETRY
        try:
            while True:
                try:
                    result = await op()
                except REDIS_DOWN as exc:
                    now = time.monotonic()
                    self.errors += 1
                    if started is None:
                        started = now
                        self.waiting += 1
                    self._lost(now, exc)
                    if now - started >= self.limit:
                        raise RedisUnavailable(
                            f"Redis unreachable for {now - started:.0f}s ({exc}); stopping "
                            "without committing: the actions are redelivered once it is back. "
                            "Check KAIROS_REDIS_URL and the Redis server.") from exc
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY)
                    continue
                self._back()
                return result
        finally:
            if started is not None:
                self.waiting -= 1

    def _lost(self, now: float, exc: BaseException) -> None:
        if self.up:
            self.up, self.lost_at = False, now
            self.outages += 1
            log.warning("Redis unreachable (%s): deliveries wait for it, retrying every %.0fs "
                        "at most, for up to %.0fs", exc, MAX_RETRY, self.limit)

    def _back(self) -> None:
        if not self.up:
            self.up = True
            log.warning("Redis back after %.1fs: deliveries resume",
                        time.monotonic() - self.lost_at)
