"""How other packages add subcommands to `kairos` without the engine importing them.

A plugin is a function `register(commands: Commands) -> None`, declared as an entry point of
the `kairos.commands` group (pyproject.toml):

    [project.entry-points."kairos.commands"]
    connectors = "connectors.cli:register"

`make setup` installs the project with its entry points (a checkout needs `pip install -e .`
once). Plugins import lazily: registering one costs a parser, not its dependencies.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from engine.config import Settings

__all__ = ["GROUP", "Check", "Commands", "Handler", "RunOverHttp", "discover"]

GROUP = "kairos.commands"

Handler = Callable[[argparse.Namespace, Settings], int]
# `kairos run --http ADDRESS`: (settings, address, data directory, rules directory) -> exit code.
RunOverHttp = Callable[[Settings, str, Path, Path], int]
# `kairos rules check|deploy`: (rules directory, settings) -> problems, one line each.
Check = Callable[[Path, Settings], list[str]]
Register = Callable[["Commands"], None]


class Commands:
    """What plugins registered: subcommands with their handlers, and `run --http`."""

    def __init__(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._sub = sub
        self.handlers: dict[str, Handler] = {}
        self.run_over_http: RunOverHttp | None = None
        self.broken: list[str] = []  # plugins found but not loadable, and why
        self.checks: list[Check] = []  # what `rules check` and `rules deploy` also run

    def add(self, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
        """A new subcommand; returns its parser for the plugin to add arguments to."""
        self.handlers[name] = handler
        return self._sub.add_parser(name, help=help)

    def serve_run_over_http(self, handler: RunOverHttp) -> None:
        """What `kairos run --http` runs: the option is the engine's, its server a plugin's."""
        self.run_over_http = handler

    def check_rules(self, check: Check) -> None:
        """A check `kairos rules check` and `rules deploy` run on the rules directory too (the
        connectors render its message templates); a problem fails both."""
        self.checks.append(check)

    def unavailable(self, what: str) -> str:
        """The error for a command no loaded plugin provides, with why plugins failed."""
        why = "".join(f"\n  {b}" for b in self.broken)
        return f"{what}{'; plugins that did not load:' if why else ''}{why}"


def discover(commands: Commands) -> None:
    """Register every plugin installed under the entry point group."""
    for ep in entry_points(group=GROUP):
        try:
            register: Register = ep.load()
        except ImportError as exc:  # installed but a dependency is missing: say so, go on
            commands.broken.append(f"{ep.value}: {type(exc).__name__}: {exc}")
            continue
        register(commands)

