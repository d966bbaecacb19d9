"""The `kairos` command: a thin layer over the runtimes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kairos", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="play generated journeys through the embedded runtime")
    demo.add_argument("--contacts", type=int, default=300)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--pace", type=float, default=0.01, help="seconds between printed lines")

    run = sub.add_parser("run", help="embedded runtime over a JSONL file or stdin")
    run.add_argument("--events", required=True, help="JSON lines (.gz ok), or - for stdin")
    run.add_argument("--out", default="-", help="where actions go as JSON lines (default stdout)")
    run.add_argument("--dead-letters", default=None, help="JSONL file (default <data-dir>/...)")
    run.add_argument("--data-dir", type=Path, default=None, help="RocksDB state directory")
    run.add_argument("--rules", type=Path, default=None, help="rules directory")
    run.add_argument("--clock", choices=["event", "wall"], default="event")

    sub.add_parser("worker", help="Kafka runtime worker (settings from KAIROS_* env)")

    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "demo":
        from engine.demo import run_demo

        return run_demo(args.contacts, args.seed, args.pace)
    if args.command == "run":
        from engine.runtime.cli_run import run_file

        return run_file(
            args.events,
            out=args.out,
            dead_letters=args.dead_letters,
            data_dir=args.data_dir or settings.data_dir / "embedded",
            rules_dir=args.rules or settings.rules_dir,
            clock=args.clock,
        )
    from engine.runtime.kafka import run_worker

    return run_worker(settings)


if __name__ == "__main__":
    sys.exit(main())
