"""`kairos console`: the console over a Kafka worker group, and `hash-password` for its users."""

from __future__ import annotations

import getpass
import sys

from engine.config import Settings
from engine.obs import logs

__all__ = ["hash_password_command", "run_console"]


def run_console(settings: Settings, address: str) -> int:
    """Serve the console at `address` over the group `settings` name (its app id, broker,
    topics and the workers' metrics endpoints) until SIGINT or SIGTERM."""
    import uvloop

    from engine.console.kafka_source import KafkaSource
    from engine.console.web import serve

    logs.setup()
    uvloop.run(serve(KafkaSource(settings), address, settings))
    return 0


def hash_password_command() -> int:
    """Print the `scrypt$...` form of a password read from the terminal (or one stdin line)."""
    from engine.console.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("console password: ")
        if getpass.getpass("again: ") != password:
            print("kairos console hash-password: the two differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("kairos console hash-password: give a password", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0
