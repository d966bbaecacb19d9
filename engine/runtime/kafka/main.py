"""`kairos worker`: the entry point that starts a worker's parts and stops them in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from engine.config import Settings
from engine.obs import logs
from engine.obs.metrics import Metrics
from engine.pipeline import Pipeline
from engine.runtime import rule_updates
from engine.runtime.kafka.admin import ensure_topics
from engine.runtime.kafka.health import serve_health
from engine.runtime.kafka.standby import keep_standbys
from engine.runtime.kafka.worker import StreamWorker
from engine.sdk.ruleset import RuleSet

log = logging.getLogger("kairos.worker")


async def serve(settings: Settings, pipeline: Pipeline, stop: asyncio.Event) -> None:
    """The worker until `stop`: topics, rules follower, health endpoint, the loop."""
    await ensure_topics(settings)
    deployed = await rule_updates.latest(settings.bootstrap, settings.topic_rules)
    if deployed is not None:  # the last deployed rules win over the local directory
        rule_updates.apply(deployed, settings.data_dir / "rules", pipeline.use_rules)
    log.info("deciding with rules: %s", pipeline.rules.describe())
    worker = StreamWorker(settings, pipeline)
    follower = asyncio.create_task(rule_updates.follow(
        settings.bootstrap, settings.topic_rules, settings.data_dir / "rules", pipeline.use_rules))
    standby = (asyncio.create_task(keep_standbys(settings, worker.tables, worker.ownership,
                                                 worker.lock))
               if settings.standby_replicas > 0 else None)
    runner = await serve_health(worker.ownership, settings.web_port, settings.metrics_addr)
    try:
        await worker.run(stop)
    finally:
        for task in (follower, standby):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await runner.cleanup()
        worker.close()


def run_worker(settings: Settings) -> int:
    """`kairos worker`: run until SIGTERM/SIGINT, serving `/metrics`, `/health`, `/ready`."""
    import uvloop

    logs.setup()
    metrics = Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.metrics_addr)
    pipeline = Pipeline(RuleSet.load(settings.rules_dir), settings.load_policy(), metrics=metrics)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, pipeline, stop)

    uvloop.run(main())
    return 0
