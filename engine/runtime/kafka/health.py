"""`/health` (the process is up) and `/ready` (its assigned tables are restored: route traffic
and count it in the group), served on the worker's web port."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from engine.runtime.kafka.ownership import Ownership


async def serve_health(current: Callable[[], Ownership | None], port: int,
                       host: str) -> web.AppRunner:
    """`current` gives the running worker's ownership, None while the worker waits for the
    broker (it then answers 503 on `/ready`, 200 on `/health`: alive, not deciding)."""
    async def live(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        ownership = current()
        if ownership is None:
            return web.json_response({"ready": False, "broker": "unreachable"}, status=503)
        body = {"ready": ownership.ready,
                "partitions": {t: sorted(ps) for t, ps in ownership.owned.items()},
                "recovery_seconds": round(ownership.recovery_seconds, 3)}
        return web.json_response(body, status=200 if ownership.ready else 503)

    app = web.Application()
    app.router.add_get("/health", live)
    app.router.add_get("/ready", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
