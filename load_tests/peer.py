"""The obvious alternative, measured: a Quix Streams app doing the engine's minimum stateful work.

For each event: read the contact's count from RocksDB state, write it back plus one, and produce
one message downstream -- a per-contact state update and a produce per event, as the worker does
(and as the baseline does without the state). Run as a subprocess by the bench, so its
librdkafka client and RocksDB live apart from the bench's own:

    python -m load_tests.peer --bootstrap 127.0.0.1:9092 --source T --sink T2 --events N

Its librdkafka consumer and producer get the `rdkafka` ceiling's tuning
(`consumer_extra_config` / `producer_extra_config`), as a Quix Streams user chasing throughput
would set them. Prints one JSON line: events processed, seconds from the first to the last,
events/s, events per 0.25 s (`buckets`, where a fetch stall shows) and a timeline. Stops by
itself after `--events` or `--timeout` seconds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

from load_tests.rdkafka import BUCKET_S, CONSUMER_TUNING, PRODUCER_TUNING


@dataclass
class Seen:
    n: int = 0
    first: float = 0.0  # perf_counter of the first event processed
    last: float = 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description="Quix Streams stateful count + produce per event")
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--sink", required=True)
    ap.add_argument("--group", default=None)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    try:
        from quixstreams import Application
    except ImportError:
        print(json.dumps({"available": False,
                          "error": "quixstreams not installed (pip install -e '.[dev]')"}))
        return

    seen = Seen()
    buckets: list[int] = []
    with tempfile.TemporaryDirectory() as state_dir:
        app = Application(
            broker_address=args.bootstrap,
            consumer_group=args.group or f"{args.source}-quix",
            auto_offset_reset="earliest",
            state_dir=state_dir,
            loglevel="WARNING",
            consumer_extra_config=CONSUMER_TUNING,
            producer_extra_config=PRODUCER_TUNING,
        )
        source = app.topic(args.source, key_deserializer="bytes", value_deserializer="bytes")
        sink = app.topic(args.sink, key_serializer="bytes", value_serializer="bytes")

        def count(value: bytes, state: Any) -> bytes:
            state.set("count", (state.get("count") or 0) + 1)
            now = time.perf_counter()
            if seen.n == 0:
                seen.first = now
            seen.n += 1
            seen.last = now
            if seen.n >= args.events:
                app.stop()
            return value

        sdf = app.dataframe(source)
        sdf = sdf.apply(count, stateful=True)
        sdf.to_topic(sink)

        def watchdog() -> None:
            started, last = time.monotonic(), 0
            while seen.n < args.events:
                time.sleep(BUCKET_S)
                buckets.append(seen.n - last)
                last = seen.n
                if time.monotonic() - started > args.timeout:
                    app.stop()
                    return

        threading.Thread(target=watchdog, daemon=True).start()
        app.run()
    seconds = seen.last - seen.first
    out: dict[str, Any] = {
        "available": True, "events": seen.n, "seconds": round(seconds, 3),
        "throughput_eps": round(seen.n / seconds) if seconds > 0 else None,
        "stopped_by": "events" if seen.n >= args.events else "time",
        "buckets": buckets,
        "timeline": [{"t": round((i + 1) * BUCKET_S, 2), "done_eps": round(n / BUCKET_S)}
                     for i, n in enumerate(buckets)],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
