"""Delivering next best actions: the shared base every channel connector runs on.

A channel is one small class with `async send(action)`; everything a demanding operator needs
around it lives here once:

- at-least-once consumption of `next-best-actions` (offsets committed after handling);
- **never twice**: an action id is marked sent in Redis after the provider accepted it, and a
  short Redis lease stops two connector processes sending the same redelivered action at once;
  a process that dies while a provider call is in flight leaves an in-flight mark, and the
  redelivered action is then resent only to providers that drop a repeated action id
  themselves (`resend_safe`); for the others it is *in doubt* and goes to the dead letters
  with that reason instead of risking a second send;
- held-out (control group) and expired actions are never sent;
- retries with exponential backoff and full jitter for transient failures; a dead letter with
  the reason after the last attempt or on a permanent failure;
- a permanent failure (a bad address, number or device token), or a provider whose breaker has
  stayed open `fallback_after` seconds, is reported as a `failed` outcome with `permanent: true`,
  on which the engine offers the next channel the rule allowed (engine/core/fallback.py);
- a per-provider rate limit shared by every connector process (a Redis counter per second);
- a per-provider circuit breaker that stops hammering a provider that keeps failing;
- a Redis outage is waited out (`RedisGate`): no send without its in-flight record, no send
  forgotten once the provider accepted it, and the wait visible in metrics;
- every outcome (sent, failed, expired, held_out) produced as an event for the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.asyncio import Redis

from connectors.redis_gate import REDIS_DOWN, RedisGate
from engine.model import actions as action_codec
from engine.model.actions import Action
from engine.model.events import epoch, iso

log = logging.getLogger("kairos.connect")

SENT_TTL = 30 * 86_400  # how long an action id is remembered as sent
LEASE_TTL = 30  # seconds a process may hold an action it is sending (3x a provider timeout)


class Transient(Exception):
    """Worth retrying: a timeout, a 5xx, a refused connection, a 4xx SMTP reply."""


class Permanent(Exception):
    """Retrying will not help: a 4xx from an HTTP provider, a 5xx SMTP reply, a bad address."""


class Channel(Protocol):
    name: str  # the action channel it delivers (email, sms, push, web, crm, print)
    provider: str  # what rate limits and circuit breakers are keyed by
    resend_safe: bool  # the provider itself drops a repeated action id (an idempotency key)

    async def send(self, action: Action) -> None: ...


class Outcome(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The closed loop: what happened to an action, back to the engine as an event."""

    outcome_id: str
    action_id: str
    contact_id: str
    channel: str
    action: str
    outcome: str  # sent | failed | expired | held_out | duplicate | in_doubt
    timestamp: str
    attempts: int = 0
    reason: str | None = None
    permanent: bool = False  # failed, and it never will succeed on this channel


@dataclass
class Retry:
    attempts: int = 5
    base: float = 0.2
    cap: float = 10.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
        return random.uniform(0, min(self.cap, self.base * 2**attempt))


@dataclass
class Breaker:
    """Closed -> open after `threshold` failures in a row -> half-open after `cooldown` s."""

    threshold: int = 5
    cooldown: float = 15.0
    failures: int = 0
    opened_at: float | None = None
    open_since: float | None = None  # when it opened, until the provider answers again

    def allow(self, now: float) -> float:
        """0 to go ahead, else seconds to wait before the next try."""
        if self.opened_at is None:
            return 0.0
        wait = self.opened_at + self.cooldown - now
        return max(wait, 0.0)

    def success(self) -> None:
        self.failures, self.opened_at, self.open_since = 0, None, None

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            if self.opened_at is None:
                log.warning("circuit open after %d failures in a row", self.failures)
            self.opened_at = now
            if self.open_since is None:
                self.open_since = now


@dataclass
class RateLimit:
    """At most `per_second` sends per provider across every process sharing the Redis."""

    redis: Redis
    per_second: int

    async def acquire(self, provider: str) -> None:
        while True:
            now = time.time()
            key = f"kairos:rate:{provider}:{int(now)}"
            n = await self.redis.incr(key)
            if n == 1:
                await self.redis.expire(key, 2)
            if n <= self.per_second:
                return
            await asyncio.sleep(1.0 - (now % 1.0) + 0.001)


@dataclass(eq=False)  # one per process, registered as a Prometheus collector: hashable
class Delivery:
    channels: dict[str, Channel]
    redis: Redis
    emit_outcome: Callable[[Outcome], Awaitable[None]]
    dead_letter: Callable[[Action, str], Awaitable[None]]
    retry: Retry = field(default_factory=Retry)
    rate_limits: dict[str, int] = field(default_factory=dict)  # provider -> sends per second
    clock: Callable[[], float] = time.time
    fallback_after: float = 300.0  # seconds a provider's breaker stays open before giving up
    gate: RedisGate = field(default_factory=RedisGate)
    breakers: dict[str, Breaker] = field(default_factory=dict)
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    in_doubt: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)

    async def handle(self, action: Action) -> Outcome | None:
        """Deliver one action at most once; None when this connector does not serve its channel."""
        channel = self.channels.get(action.channel)
        if channel is None:
            return None
        if action.control_group:
            return await self._outcome(action, "held_out", 0)
        if epoch(action.expires_at) <= self.clock():
            return await self._outcome(action, "expired", 0)
        key = action.action_id
        sent_key, lease_key, flight_key = (f"kairos:sent:{key}", f"kairos:lease:{key}",
                                           f"kairos:inflight:{key}")
        redis, gate = self.redis, self.gate
        while not await gate.call(lambda: redis.set(lease_key, b"1", nx=True, ex=LEASE_TTL)):
            if await self._exists(sent_key):
                break
            await asyncio.sleep(0.2)  # another process is sending it right now
        try:
            if await self._exists(sent_key):
                self.skipped += 1
                return await self._outcome(action, "duplicate", 0)
            if not channel.resend_safe and await self._exists(flight_key):
                return await self._in_doubt(action, sent_key, flight_key)
            await gate.call(lambda: redis.set(flight_key, b"1", ex=SENT_TTL))
            attempts, error, permanent = await self._attempts(channel, action)
            if error is None:
                await self._settle(sent_key, flight_key, b"1")
                self.sent += 1
                return await self._outcome(action, "sent", attempts)
            await gate.call(lambda: redis.delete(flight_key))
            self.failed += 1
            await self.dead_letter(action, error)
            return await self._outcome(action, "failed", attempts, error, permanent=permanent)
        finally:
            with contextlib.suppress(*REDIS_DOWN):  # else the lease expires within LEASE_TTL
                await redis.delete(lease_key)

    async def _exists(self, key: str) -> bool:
        return bool(await self.gate.call(lambda: self.redis.exists(key)))

    async def _in_doubt(self, action: Action, sent_key: str, flight_key: str) -> Outcome:
        """A process died mid-call: the provider may have it. Not resent; settled once."""
        reason = ("in doubt: a connector stopped while the provider call was in flight; "
                  "not resent so the contact is never contacted twice")
        self.in_doubt += 1
        await self.dead_letter(action, reason)
        await self._settle(sent_key, flight_key, b"in_doubt")
        return await self._outcome(action, "in_doubt", 0, reason)

    async def _settle(self, sent_key: str, flight_key: str, how: bytes) -> None:
        """Sent (or given up as in doubt) and no longer in flight, in one transaction."""
        async def settle() -> None:
            async with self.redis.pipeline(transaction=True) as tx:
                tx.set(sent_key, how, ex=SENT_TTL)
                tx.delete(flight_key)
                await tx.execute()

        await self.gate.call(settle)

    async def _attempts(self, channel: Channel,
                        action: Action) -> tuple[int, str | None, bool]:
        """Attempts made, why the last failed (None: sent), and whether that is for good."""
        breaker = self.breakers.setdefault(channel.provider, Breaker())
        limit = self.rate_limits.get(channel.provider)
        error = "no attempt"
        attempt = 0
        while attempt < self.retry.attempts:
            attempt += 1
            while wait := breaker.allow(self.clock()):  # backpressure: lag grows, visibly
                since = breaker.open_since if breaker.open_since is not None else self.clock()
                left = since + self.fallback_after - self.clock()
                if left <= 0:
                    return attempt - 1, (f"permanent failure: provider {channel.provider} "
                                         f"unavailable for {self.fallback_after:g} s"), True
                await asyncio.sleep(min(wait, left))
            if limit:
                await self.gate.call(partial(RateLimit(self.redis, limit).acquire,
                                             channel.provider))
            try:
                await channel.send(action)
            except REDIS_DOWN:  # a channel kept in Redis (web): wait for it, not an attempt
                attempt -= 1
                await self.gate.call(self.redis.ping)
                continue
            except Permanent as exc:
                breaker.success()  # the provider answered: it is up
                return attempt, f"permanent failure: {exc}", True
            except Exception as exc:  # transient, or anything unexpected from a provider client
                breaker.failure(self.clock())
                error = f"{type(exc).__name__}: {exc}"
                if attempt < self.retry.attempts:
                    await asyncio.sleep(self.retry.delay(attempt))
                continue
            breaker.success()
            return attempt, None, False
        return self.retry.attempts, f"gave up after {self.retry.attempts} attempts: {error}", False

    async def _outcome(
        self, action: Action, outcome: str, attempts: int, reason: str | None = None,
        *, permanent: bool = False,
    ) -> Outcome:
        o = Outcome(
            outcome_id=f"{action.action_id}:{outcome}", action_id=action.action_id,
            contact_id=action.contact_id, channel=action.channel, action=action.action,
            outcome=outcome, timestamp=iso(self.clock()), attempts=attempts, reason=reason,
            permanent=permanent,
        )
        self.outcomes[(action.channel, outcome)] += 1
        await self.emit_outcome(o)
        return o

    def collect(self) -> Iterator[Metric]:
        """Prometheus: what the connectors did, and which providers' breakers are open."""
        done = CounterMetricFamily(
            "kairos_deliveries", "Actions handled by connectors, per channel and outcome (sent, "
            "failed, expired, held_out, duplicate, in_doubt).", labels=["channel", "outcome"])
        for (channel, outcome), n in self.outcomes.items():
            done.add_metric([channel, outcome], n)
        yield done
        open_ = GaugeMetricFamily("kairos_breaker_open",
                                  "1 while a provider's circuit breaker is open.",
                                  labels=["provider"])
        for provider, breaker in self.breakers.items():
            open_.add_metric([provider], 1.0 if breaker.allow(self.clock()) else 0.0)
        yield open_
        yield GaugeMetricFamily("kairos_connector_redis_up",
                                "0 while the connector cannot reach Redis and deliveries wait.",
                                value=1.0 if self.gate.up else 0.0)
        yield GaugeMetricFamily("kairos_deliveries_waiting_for_redis",
                                "Deliveries blocked right now until Redis answers again.",
                                value=float(self.gate.waiting))
        yield CounterMetricFamily("kairos_connector_redis_errors",
                                  "Redis calls that failed and were retried, all outages.",
                                  value=float(self.gate.errors))


def decode_action(raw: bytes) -> Action:
    return action_codec.decode(raw)
