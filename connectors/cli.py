"""The connectors' `kairos` subcommands: `connect`, `collect`, and the server of `run --http`.

Registered through the `kairos.commands` entry point group (engine/commands.py). Each handler
imports its module when run, so other commands do not pay for aiohttp, redis or aiokafka.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from connectors.channels import CHANNEL_NAMES
from engine.commands import Commands
from engine.config import Settings

__all__ = ["register"]


def register(commands: Commands) -> None:
    con = commands.add("connect", "deliver next best actions on some channels", _connect)
    con.add_argument("channels", nargs="+", choices=CHANNEL_NAMES)
    col = commands.add("collect", "HTTP collector producing to the Kafka input topics", _collect)
    col.add_argument("--http", default=None, metavar="HOST:PORT",
                     help="listen address (default KAIROS_HTTP, 127.0.0.1:8080)")
    commands.serve_run_over_http(_run_over_http)


def _connect(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.connect import run_connect

    return run_connect(settings, args.channels)


def _collect(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.serve import run_kafka_collector

    return run_kafka_collector(settings, args.http or settings.http)


def _run_over_http(settings: Settings, address: str, data_dir: Path, rules_dir: Path) -> int:
    from connectors.serve import run_embedded_http

    return run_embedded_http(settings, address, data_dir, rules_dir)
