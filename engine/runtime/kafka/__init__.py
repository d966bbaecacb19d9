"""The Kafka runtime: the pipeline's steps over topics, in batches straight on aiokafka.

The pipeline has keyed steps (decode, identity, contact, item) joined by internal topics,
`<app>-identity` (keyed by identifier), `<app>-contacts` (keyed by contact id) and
`<app>-items` (keyed by catalogue item id, engine/core/items.py). Stock Faust
pays its per-message consumer path, a table write and a send at each hop: about 500 events/s
per worker here. This runtime keeps the topology and its guarantees but moves bytes in batches:

- one consumer group reads the input topics and the internal topics, `getmany` at a time
  (`worker.py`), and hands each record to `Pipeline.drain`;
- a message whose key falls in an internal partition this worker owns (and has caught up on,
  `ownership.py`) is run by the drain in process, in order, instead of a round trip through
  Kafka; the others go to the internal topic for the worker that owns them;
- contact states are cached decoded and written once per commit (RocksDB + a changelog record
  per changed contact, `tables.py`), not once per message.

Tables (`engine/storage/changelog.py`) live in one RocksDB per table on local disk; their
changelogs are the compacted topics `<app>-identity-changelog`, `<app>-contacts-changelog` and
`<app>-items-changelog`, with the same names and raw byte records Faust used, so `kairos explain
--kafka` and a worker moving from Faust keep working. A worker restores the changelog partitions
it is assigned (from its last checkpoint) before it decides anything for them (`assignment.py`).

When offsets are committed (`commits.py`): every `commit_interval`, or sooner after 2,000
records or 20,000 unacknowledged sends, when partitions are revoked, and on the way out; and
only after everything produced for the events they cover (actions, dead letters, internal
messages, changelog records) was acknowledged by the broker. At-least-once, the acks and the
offset commit finish in the background while the next records are decided, one commit in
flight at a time, and a re-delivered event re-emits its action ids from the state's outbox
instead of deciding again; exactly-once, outputs and offsets are one transaction. A commit that
failed makes every later one refuse, so offsets never pass outputs that were lost.

Start order (`main.serve`), each part before what needs it:

1. `admin.ensure_topics`: every topic exists (a missing one is created, one line each) and
   answers, and the group has a coordinator, before anything reads or writes one.
2. The last deployed rules are applied: they win over the local directory from the first
   decision on.
3. `StreamWorker` opens the local tables and builds the clients (not connected yet).
4. The rules follower and, with `KAIROS_STANDBY_REPLICAS=1`, the standbys (`standby.py`) start
   tailing; the standbys wait while the worker is not ready.
5. `health.serve_health`: `/health` answers from here on, `/ready` says 503 until the assigned
   changelog partitions are restored.
6. `StreamWorker.run`: the producer starts before the consumer, because joining the group
   runs the rebalance listener, which may commit (and so send); then the loop.

Stop order, on SIGTERM/SIGINT: the loop ends after its current batch; the last commit runs
while both clients are still up (offsets through the consumer, acks or the transaction through
the producer); the consumer stops (leaving the group) before the producer, which flushes what
is left; then the follower and standbys are cancelled and the health endpoint closes; the
tables close last, once nothing can write to them.
"""

from engine.runtime.kafka.admin import ensure_topics
from engine.runtime.kafka.main import run_worker, serve
from engine.runtime.kafka.worker import StreamWorker

__all__ = ["StreamWorker", "ensure_topics", "run_worker", "serve"]
