"""Running the collector: `kairos run --http` (embedded engine inside) and `kairos collect`."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import web

from connectors.collector import CollectorConfig, collector_app
from connectors.sinks import EmbeddedSink, KafkaSink
from engine.config import Settings
from engine.console import web as console
from engine.console.embedded_source import EmbeddedSource
from engine.console.source import LiveFeed
from engine.model import actions as action_codec
from engine.model import deadletter
from engine.model.actions import Action
from engine.model.deadletter import DeadLetter
from engine.obs import logs
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from engine.runtime.rule_updates import DirectoryWatcher
from engine.sdk.ruleset import RuleSet


def collector_config(settings: Settings) -> CollectorConfig:
    keys = frozenset(k.strip() for k in settings.write_keys.split(",") if k.strip())
    if not keys:
        print("kairos: no KAIROS_WRITE_KEYS: every ingest request will be refused (401)",
              file=sys.stderr)
    return CollectorConfig(keys, settings.sendgrid_public_key, settings.social_webhook_secret,
                           settings.mailgun_signing_key, settings.link_secret)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _serve(app: web.Application, address: str, stopping: asyncio.Event) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = split_address(address)
    await web.TCPSite(runner, host, port).start()
    print(f"kairos: collecting on http://{host}:{port}", file=sys.stderr, flush=True)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def _stop_on_signals(stopping: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)


def run_embedded_http(settings: Settings, address: str, data_dir: Path, rules_dir: Path) -> int:
    """The embedded engine behind the collector; each action is a JSON line on stdout."""
    logs.setup()

    feed = LiveFeed()

    def on_action(a: Action) -> None:
        sys.stdout.buffer.write(action_codec.encode(a) + b"\n")
        sys.stdout.flush()
        feed.publish(a)

    data_dir.mkdir(parents=True, exist_ok=True)
    dead = (data_dir / "dead-letters.jsonl").open("ab")

    def on_dead_letter(d: DeadLetter) -> None:
        dead.write(deadletter.encode(d) + b"\n")
        dead.flush()

    pipeline = Pipeline(RuleSet.load(rules_dir), settings.load_policy())
    runtime = EmbeddedRuntime(pipeline, data_dir=data_dir, on_action=on_action,
                              on_dead_letter=on_dead_letter, clock="wall",
                              on_shadow=lambda a: feed.publish(a, shadow=True))
    watcher = DirectoryWatcher(rules_dir, pipeline.use_rules)

    async def main() -> None:
        stopping = asyncio.Event()
        _stop_on_signals(stopping)

        async def background() -> None:
            while not stopping.is_set():
                runtime.tick()  # due timers fire within a quarter of a second
                watcher.poll()
                runtime.flush()
                await asyncio.sleep(0.25)

        task = asyncio.create_task(background())
        app = collector_app(EmbeddedSink(runtime), collector_config(settings))
        if not console.mount(app, EmbeddedSource(runtime, feed), settings):
            print("kairos: no KAIROS_CONSOLE_USERS: the console at /console answers 401",
                  file=sys.stderr)
        try:
            await _serve(app, address, stopping)
        finally:
            task.cancel()

    try:
        asyncio.run(main())
    finally:
        runtime.close()
        dead.close()
    return 0


def run_kafka_collector(settings: Settings, address: str) -> int:
    """`kairos collect`: events in over HTTP, out to the input topics with broker acks."""
    logs.setup()

    async def main() -> None:
        stopping = asyncio.Event()
        _stop_on_signals(stopping)
        sink = KafkaSink(settings)
        await sink.start()
        web_lookup = None
        redis = None
        if settings.redis_url:
            from redis.asyncio import Redis

            from connectors.channels.web import latest_action

            redis = Redis.from_url(settings.redis_url)

            async def web_lookup(contact: str) -> bytes | None:
                return await latest_action(redis, contact)

        try:
            await _serve(collector_app(sink, collector_config(settings), web_lookup),
                         address, stopping)
        finally:
            await sink.stop()
            if redis is not None:
                await redis.aclose()

    asyncio.run(main())
    return 0
