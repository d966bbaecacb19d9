"""`kairos connect CHANNEL...`: channel connectors consuming `next-best-actions`.

One consumer group per set of channels, so each set gets every action; offsets are committed
after a batch of actions was handled (sent, dead-lettered, or skipped with a reason), and
`Delivery` keeps a redelivered action from being sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry, start_http_server
from redis.asyncio import Redis

from connectors.channels import CHANNEL_NAMES
from connectors.channels.crm_topic import CrmTopic
from connectors.channels.email_smtp import EmailChannel
from connectors.channels.http_provider import HttpProvider, Webhook
from connectors.channels.print_batch import PrintBatch
from connectors.channels.web import WebChannel
from connectors.delivery import Channel, Delivery, Outcome, Retry
from connectors.redis_gate import RedisGate, RedisUnavailable
from connectors.templates import Library
from connectors.templates.library import Links
from connectors.tracked_links import LinkSigner
from connectors.unsubscribe import UnsubscribeLinks
from connectors.visitor_mirror import mirror_identities
from engine.config import Settings
from engine.model import deadletter
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.obs import logs
from engine.sdk.template_layout import templates_dir

log = logging.getLogger("kairos.connect")
CONCURRENCY = 32


def library(settings: Settings) -> Library:
    """The templates directory of the settings (beside the rules unless set)."""
    return Library(templates_dir(settings.rules_dir, settings.templates_dir),
                   locale=settings.templates_locale,
                   sms_max_segments=settings.sms_max_segments,
                   links=_links(settings))


def _links(settings: Settings) -> Links | None:
    """Marketing email's unsubscribe link, where the link settings are given (the email
    channel refuses to start without them; other channels carry no such link)."""
    if not (settings.link_secret and settings.public_url and settings.unsubscribe_domain):
        return None
    return UnsubscribeLinks.from_settings(settings).template_links


def build_channel(name: str, settings: Settings, redis: Redis,
                  producer: AIOKafkaProducer, templates: Library) -> Channel:
    if name == "email":
        return EmailChannel(settings, templates)
    links = link_signer(settings)
    if name == "sms":
        return HttpProvider("sms", settings.sms_url, settings.sms_auth, templates=templates,
                            links=links)
    if name == "push":
        return HttpProvider("push", settings.push_url, settings.push_auth, templates=templates,
                            links=links)
    if name == "web":
        return WebChannel(redis, templates)
    if name == "crm":
        if settings.crm_url:
            return HttpProvider("crm", settings.crm_url, templates=templates)
        return CrmTopic(producer, settings.topic_crm, templates)
    if name == "print":
        return PrintBatch(settings.print_dir, templates)
    if name == "webhook":
        return Webhook(settings.webhook_channel, settings.webhook_url, settings.webhook_secret)
    raise ValueError(f"unknown channel {name!r} (one of {', '.join(CHANNEL_NAMES)})")


def link_signer(settings: Settings) -> LinkSigner | None:
    """Tracked links when both the collector's public URL and the secret are configured."""
    if not (settings.public_url and settings.link_secret):
        return None
    return LinkSigner(settings.public_url, settings.link_secret,
                      settings.link_ttl_days * 86_400)


def rate_limits(text: str) -> dict[str, int]:
    """`sms=10,push=50` -> provider names of those channels -> sends per second."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, n = part.partition("=")
        out[name.strip()] = int(n)
    return out


async def connect(settings: Settings, names: list[str], stop: asyncio.Event) -> Delivery:
    redis = Redis.from_url(settings.redis_url)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all",
                                enable_idempotence=True)
    await producer.start()
    channels = {}
    templates = library(settings)
    for n in names:
        ch = build_channel(n, settings, redis, producer, templates)
        channels[ch.name] = ch
    limits = rate_limits(settings.rate_limits)

    async def emit_outcome(o: Outcome) -> None:
        import msgspec

        await producer.send(settings.topic_outcomes, msgspec.json.encode(o),
                            key=o.contact_id.encode())

    async def dead_letter(action: Action, reason: str) -> None:
        from engine.model import actions as action_codec

        letter = DeadLetter.of(reason, f"connect:{action.channel}", action_codec.encode(action),
                               topic=settings.topic_actions, key=action.contact_id)
        await producer.send(settings.topic_dead_letters, deadletter.encode(letter))

    delivery = Delivery(
        channels, redis, emit_outcome, dead_letter, Retry(attempts=settings.delivery_attempts),
        rate_limits={ch.provider: limits[n] for n, ch in channels.items() if n in limits},
        gate=RedisGate(limit=settings.redis_outage_limit), fallback_after=settings.fallback_after,
    )
    if settings.connect_metrics_port:
        registry = CollectorRegistry()
        registry.register(delivery)
        start_http_server(settings.connect_metrics_port, addr=settings.metrics_addr,
                          registry=registry)
    consumer = AIOKafkaConsumer(
        settings.topic_actions, bootstrap_servers=settings.bootstrap,
        group_id=f"{settings.app_id}-connect-{'-'.join(sorted(names))}",
        enable_auto_commit=False, auto_offset_reset="earliest", isolation_level="read_committed",
        max_poll_records=500,
        # A batch may wait out a Redis outage: the group must not evict the consumer meanwhile.
        max_poll_interval_ms=int((settings.redis_outage_limit + 60) * 1000),
    )
    await consumer.start()
    gate = asyncio.Semaphore(CONCURRENCY)
    # The web channel's visitors: the identity changelog mirrored for the Kafka collector.
    mirror = asyncio.create_task(mirror_identities(settings, redis, stop)) \
        if "web" in channels else None
    if mirror is not None:  # a failed mirror stops the connector, which then raises it
        mirror.add_done_callback(lambda _: stop.set())

    async def one(raw: bytes) -> None:
        from engine.model import actions as action_codec

        try:
            action = action_codec.decode(raw)
        except Exception as exc:  # not an action: keep it, with the reason
            letter = DeadLetter.of(f"not an action: {exc}", "connect", raw,
                                   topic=settings.topic_actions)
            await producer.send(settings.topic_dead_letters, deadletter.encode(letter))
            return
        async with gate:
            await delivery.handle(action)

    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            records = [r for rs in batch.values() for r in rs if r.value is not None]
            if not records:
                continue
            await asyncio.gather(*(one(r.value) for r in records))
            await producer.flush()  # outcomes and dead letters are safe before the commit
            await consumer.commit()
    finally:
        stop.set()
        if mirror is not None:
            await mirror
        await consumer.stop()
        await producer.stop()
        await redis.aclose()
    return delivery


def run_connect(settings: Settings, names: list[str]) -> int:
    logs.setup()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            d = await connect(settings, names, stop)
        except RedisUnavailable as exc:
            log.error("%s", exc)
            raise SystemExit(1) from None
        log.info("stopped: %d sent, %d failed, %d duplicates skipped", d.sent, d.failed,
                 d.skipped)

    asyncio.run(main())
    return 0
