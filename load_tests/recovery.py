"""How long a worker with an empty disk takes to restore N contacts from the changelogs.

    python -m load_tests.recovery [--bootstrap 127.0.0.1:9092] [--contacts 100000]

One worker builds N contacts (an identify each, so every contact has an identity record for its
user id and its email); it stops; a second worker of the same group, with an empty data
directory, starts: the time until it is ready (`/ready`, every changelog partition restored) is
the recovery time. Writes `load_tests/results/recovery.json`. Bounded: N events, 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

from engine.testing.kafka import Worker, produce

RESULTS = Path(__file__).parent / "results"


def consumed(w: Worker) -> float:
    text = urllib.request.urlopen(w.metrics_url(), timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("kairos_events_consumed_total"))


def recovery(bootstrap: str, contacts: int, timeout: float = 600) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        builder = Worker(bootstrap, Path(tmp) / "builder").start()
        started = time.monotonic()
        produce(bootstrap, [(builder.topics["clickstream"], f"u{c}".encode(), orjson.dumps({
            "messageId": f"R{c}", "type": "identify", "userId": f"u{c}",
            "timestamp": "2026-11-25T00:00:00Z", "traits": {"email": f"u{c}@example.com"}}))
            for c in range(contacts)])
        while consumed(builder) < contacts and time.monotonic() - started < timeout:
            time.sleep(0.5)
        built = time.monotonic() - started
        time.sleep(2)  # the last batch's commit
        builder.stop()
        fresh = Worker(bootstrap, Path(tmp) / "fresh", prefix=builder.prefix)
        started = time.monotonic()
        fresh.start(ready_timeout=timeout)
        ready = time.monotonic() - started
        fresh.stop()
        restored = re.findall(r"tables restored in ([0-9.]+)s", fresh.log_path.read_text())
    result = {"scenario": "recovery", "contacts": contacts, "build_seconds": round(built, 2),
              "ready_seconds": round(ready, 2),
              "restore_seconds": float(restored[-1]) if restored else None}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recovery.json").write_text(json.dumps(result, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(recovery(args.bootstrap, args.contacts)))


if __name__ == "__main__":
    main()
