"""The Faust runtime: the pipeline's steps as faust-streaming agents and tables.

For teams that run Faust: `kairos worker --runtime faust` (or `KAIROS_RUNTIME=faust`) runs the
same drain as the other runtimes as Faust agents (`agents.py`) over the same topics, with
Faust tables for identity, contacts and items whose changelogs are the batch runtime's own
(`tables.py`, `store.py`), Faust's recovery, standby replicas and processing guarantee, a timer
for due timers and `/health`, `/ready` as web views (`health.py`). `install(app, settings,
rules)` mounts all of it into an existing `faust.App` (docs/examples/faust_app.py). The batch
runtime (engine/runtime/kafka/) stays the default: it is several times faster
(docs/operations.md).
"""

from engine.runtime.faust.agents import KairosAgents
from engine.runtime.faust.app import install, make_app, run_worker

__all__ = ["KairosAgents", "install", "make_app", "run_worker"]
