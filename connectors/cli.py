"""The connectors' `kairos` subcommands: `connect`, `collect`, `templates`, and the server of
`run --http`; and the templates check `kairos rules check|deploy` run.

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
    tpl = commands.add("templates", "check or preview message templates", _templates)
    tpl_sub = tpl.add_subparsers(dest="templates", required=True)
    chk = tpl_sub.add_parser("check", help="render every template against sample contexts")
    chk.add_argument("directory", nargs="?", type=Path, default=None,
                     help="rules directory (default KAIROS_RULES_DIR)")
    pre = tpl_sub.add_parser("preview", help="render one action's message for a real contact")
    pre.add_argument("action")
    pre.add_argument("--channel", required=True, choices=CHANNEL_NAMES)
    pre.add_argument("--contact", required=True, help="contact id, or an identifier")
    pre.add_argument("--rules", type=Path, default=None, help="rules directory")
    pre.add_argument("--data-dir", type=Path, default=None,
                     help="an embedded runtime's state (default: <KAIROS_DATA_DIR>/embedded)")
    pre.add_argument("--kafka", action="store_true",
                     help="read the worker group's changelogs on KAIROS_BROKER instead")
    commands.check_rules(_check_templates)


def _check_templates(rules_dir: Path, settings: Settings) -> list[str]:
    from connectors.templates.check import check_rules_dir

    return check_rules_dir(rules_dir, settings, missing=False)


def _connect(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.connect import run_connect

    return run_connect(settings, args.channels)


def _collect(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.serve import run_kafka_collector

    return run_kafka_collector(settings, args.http or settings.http)


def _run_over_http(settings: Settings, address: str, data_dir: Path, rules_dir: Path) -> int:
    from connectors.serve import run_embedded_http

    return run_embedded_http(settings, address, data_dir, rules_dir)


def _templates(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.templates.command import run_templates

    return run_templates(args, settings)
