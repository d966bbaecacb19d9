"""The Faust app of `kairos worker --runtime faust`, and `install` for a Faust app of one's own.

`make_app` builds a `faust.App` from the Kairos settings: the app id is the Kairos app id (so
the changelogs are the batch runtime's), the broker, RocksDB (rocksdict) tables under the data
directory, `KAIROS_PROCESSING_GUARANTEE` as Faust's processing guarantee, `KAIROS_PARTITIONS`
for the topics it declares, `KAIROS_SESSION_TIMEOUT`, `KAIROS_STANDBY_REPLICAS`, and its web
server (the health views) on 127.0.0.1 and `KAIROS_WEB_PORT`. `install` adds the Kairos
agents, tables, timer and views to any app, which keeps its own broker, store and settings.
"""

from __future__ import annotations

import asyncio
import logging

import faust
import mode.loop

from engine.config import Settings
from engine.obs import logs
from engine.obs.metrics import Metrics
from engine.pipeline import Pipeline
from engine.runtime import rule_updates
from engine.runtime.faust.agents import KairosAgents
from engine.runtime.faust.health import add_health_views
from engine.runtime.kafka.admin import ensure_topics
from engine.sdk.ruleset import RuleSet

__all__ = ["install", "make_app", "run_worker"]

log = logging.getLogger("kairos.worker")
PRODUCER_LINGER = 0.005  # seconds a record may wait for others to the same partition
PRODUCER_BATCH_BYTES = 256 * 1024


def make_app(settings: Settings) -> faust.App:
    """A Faust app configured from `settings` (nothing declared on it yet)."""
    return faust.App(
        settings.app_id,
        broker=settings.broker,
        datadir=str(settings.data_dir / "faust"),
        store="rocksdb://",
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(settings.session_timeout / 4, 0.5),
        broker_commit_interval=max(settings.commit_interval, 0.1),
        consumer_auto_offset_reset="earliest",
        # Faust's producer defaults to one request per record (no linger, 16 KiB batches):
        # a Faust shop batches, as the batch runtime's producer does.
        producer_linger=PRODUCER_LINGER,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        web_port=settings.web_port,
        web_in_thread=False,
        autodiscover=False,
    )


def install(app: faust.App, settings: Settings, rules: RuleSet | Pipeline,
            health_prefix: str = "") -> KairosAgents:
    """Declare the Kairos agents, tables, timer and `/health`, `/ready` views on `app`.

    `app.conf.id` must be `settings.app_id`: the tables' changelogs, the internal topics and
    the consumer group derive from it. `rules` is a rule set, or a whole pipeline (its own
    policy and metrics). Topics are read from `settings` (`KAIROS_TOPIC_*`); they must exist
    (`engine.runtime.kafka.ensure_topics(settings)` creates what is missing). Give
    `health_prefix` (e.g. "/kairos") when the app serves its own `/health`.
    """
    if app.conf.id != settings.app_id:
        raise ValueError(f"the Faust app's id {app.conf.id!r} must be the Kairos app id "
                         f"{settings.app_id!r}: the changelogs and topics derive from it")
    pipeline = rules if isinstance(rules, Pipeline) else Pipeline(rules, settings.load_policy())
    agents = KairosAgents(app, settings, pipeline)
    add_health_views(app, agents.ownership, health_prefix)
    return agents


def run_worker(settings: Settings) -> int:
    """`kairos worker --runtime faust`: until SIGTERM/SIGINT (Faust's worker handles them)."""
    mode.loop.use("uvloop")  # Faust's (mode's) way to run on uvloop, set before any loop
    logs.setup()
    metrics = Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.metrics_addr)
    pipeline = Pipeline(RuleSet.load(settings.rules_dir), settings.load_policy(), metrics=metrics)

    async def prepare() -> None:
        await ensure_topics(settings)
        deployed = await rule_updates.latest(settings.bootstrap, settings.topic_rules)
        if deployed is not None:  # the last deployed rules win over the local directory
            rule_updates.apply(deployed, settings.data_dir / "rules", pipeline.use_rules)

    asyncio.run(prepare())
    app = make_app(settings)
    install(app, settings, pipeline)

    @app.task  # type: ignore[untyped-decorator]
    async def follow_rules() -> None:
        await rule_updates.follow(settings.bootstrap, settings.topic_rules,
                                  settings.data_dir / "rules", pipeline.use_rules)

    log.info("deciding with rules: %s (Faust runtime)", pipeline.rules.describe())
    worker = faust.Worker(app, loglevel="INFO", redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
