"""`kairos worker`: the entry point that starts a worker's parts and stops them in order."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from engine.config import Settings
from engine.obs import logs
from engine.obs.metrics import Metrics
from engine.pipeline import Pipeline
from engine.runtime import rule_updates
from engine.runtime.kafka.admin import ensure_topics
from engine.runtime.kafka.faults import BrokerWatch, WorkerFatal, classify, retriable
from engine.runtime.kafka.health import serve_health
from engine.runtime.kafka.standby import keep_standbys
from engine.runtime.kafka.worker import StreamWorker, abandoned_closed
from engine.sdk.ruleset import RuleSet

log = logging.getLogger("kairos.worker")
ABANDONED_CLOSE = 60.0  # seconds, once the broker is back, for a failed worker's clients


async def serve(settings: Settings, pipeline: Pipeline, stop: asyncio.Event) -> None:
    """The worker until `stop`, starting over by itself after every broker fault.

    Each start: topics, the last deployed rules, a fresh `StreamWorker` (its tables opened,
    its memory empty), the standbys, then the loop. A retriable failure ends that start without
    a commit; the worker is unready until the broker answers and the next start has restored
    its partitions. Raises `WorkerFatal` for what no wait can cure.
    """
    watch = BrokerWatch(settings, pipeline.metrics)
    current: StreamWorker | None = None
    runner = await serve_health(lambda: current.ownership if current else None,
                                settings.web_port, settings.metrics_addr)
    follower: asyncio.Task[None] | None = None
    try:
        while not stop.is_set():
            standby: asyncio.Task[None] | None = None
            try:
                await ensure_topics(settings)
                deployed = await rule_updates.latest(settings.bootstrap, settings.topic_rules)
                if deployed is not None:  # the last deployed rules win over the local directory
                    rule_updates.apply(deployed, settings.data_dir / "rules", pipeline.use_rules)
                if follower is None or follower.done():
                    follower = asyncio.create_task(rule_updates.follow(
                        settings.bootstrap, settings.topic_rules, settings.data_dir / "rules",
                        pipeline.use_rules))
                log.info("deciding with rules: %s", pipeline.rules.describe())
                current = StreamWorker(settings, pipeline)
                if settings.standby_replicas > 0:
                    standby = asyncio.create_task(keep_standbys(
                        settings, current.tables, current.ownership, current.lock))
                await current.run(stop)
            except Exception as exc:
                fatal = classify(exc)
                if fatal is not None:
                    raise fatal from exc
                if not retriable(exc):
                    raise
                watch.lost(exc)
            finally:
                await _cancel(standby)
                if current is not None:
                    current.close()
                    current = None
            if stop.is_set() or not await watch.wait(stop):
                break
            if not await abandoned_closed(timeout=ABANDONED_CLOSE):
                log.warning("the failed worker's clients did not close within %.0fs; starting "
                            "over beside them", ABANDONED_CLOSE)
    finally:
        await _cancel(follower)
        await runner.cleanup()
        await abandoned_closed(timeout=10)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def run_worker(settings: Settings) -> int:
    """`kairos worker`: run until SIGTERM/SIGINT, serving `/metrics`, `/health`, `/ready`."""
    import uvloop

    logs.setup()
    metrics = Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.metrics_addr)
    pipeline = Pipeline(RuleSet.load(settings.rules_dir), settings.load_policy(), metrics=metrics)
    # What start-up built (modules, rules, policy: ~70,000 objects) lives as long as the worker:
    # out of the collector's generations, a full collection no longer walks it each time.
    gc.freeze()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, pipeline, stop)

    try:
        uvloop.run(main())
    except WorkerFatal as exc:
        log.error("worker stopped: %s", exc)
        return 2
    return 0
