"""`/health` (the process is up) and `/ready` (its assigned tables are restored) as Faust web
views, answering like the batch runtime's (engine/runtime/kafka/health.py)."""

from __future__ import annotations

from typing import Any

import faust

from engine.runtime.kafka.ownership import Ownership

__all__ = ["add_health_views"]


def add_health_views(app: faust.App, ownership: Ownership, prefix: str = "") -> None:
    """`<prefix>/health` and `<prefix>/ready` on the app's web server."""

    async def health(view: Any, request: Any) -> Any:
        return view.json({"status": "ok"})

    async def ready(view: Any, request: Any) -> Any:
        body = {"ready": ownership.ready,
                "partitions": {t: sorted(ps) for t, ps in ownership.owned.items()},
                "recovery_seconds": round(ownership.recovery_seconds, 3)}
        return view.json(body, status=200 if ownership.ready else 503)

    app.page(f"{prefix}/health", name=f"{prefix}kairos-health")(health)
    app.page(f"{prefix}/ready", name=f"{prefix}kairos-ready")(ready)
