"""`kairos console --http HOST:PORT`: the console over a Kafka worker group, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from engine.config import Settings
from engine.console.source import ConsoleSource
from engine.obs import logs

__all__ = ["run_console"]


def run_console(settings: Settings, address: str) -> int:
    """Serve the console at `address`, reading the group `settings` name (its app id,
    broker, topics and the workers' metrics endpoints)."""
    import uvloop

    from engine.console.kafka_source import KafkaSource
    # The pages' module, imported by name: it is written and typed beside this command.
    serve: Callable[[ConsoleSource, str, Settings], Coroutine[Any, Any, None]] = (
        importlib.import_module("engine.console.web").serve)

    logs.setup()

    async def main() -> None:
        source = KafkaSource(settings)
        await source.start()
        server = asyncio.create_task(serve(source, address, settings))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.cancel)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await server
        finally:
            await source.stop()

    uvloop.run(main())
    return 0
