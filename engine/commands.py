"""How other packages add subcommands to `kairos` without the engine importing them.

A plugin is a function `register(commands: Commands) -> None`, declared as an entry point of
the `kairos.commands` group (pyproject.toml):

    [project.entry-points."kairos.commands"]
    connectors = "connectors.cli:register"

From a source checkout that was not (re)installed, entry points are not visible yet, so the
plugin modules the project ships (`SOURCE_PLUGINS`) are also looked for by name and used when
importable. Plugins import lazily: registering one costs a parser, not its dependencies.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from engine.config import Settings

__all__ = ["GROUP", "SOURCE_PLUGINS", "Commands", "Handler", "RunOverHttp", "discover"]

GROUP = "kairos.commands"
SOURCE_PLUGINS = ("connectors.cli",)  # module names holding a `register` function

Handler = Callable[[argparse.Namespace, Settings], int]
# `kairos run --http ADDRESS`: (settings, address, data directory, rules directory) -> exit code.
RunOverHttp = Callable[[Settings, str, Path, Path], int]
Register = Callable[["Commands"], None]


class Commands:
    """What plugins registered: subcommands with their handlers, and `run --http`."""

    def __init__(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._sub = sub
        self.handlers: dict[str, Handler] = {}
        self.run_over_http: RunOverHttp | None = None
        self.broken: list[str] = []  # plugins found but not loadable, and why

    def add(self, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
        """A new subcommand; returns its parser for the plugin to add arguments to."""
        self.handlers[name] = handler
        return self._sub.add_parser(name, help=help)

    def serve_run_over_http(self, handler: RunOverHttp) -> None:
        """What `kairos run --http` runs: the option is the engine's, its server a plugin's."""
        self.run_over_http = handler

    def unavailable(self, what: str) -> str:
        """The error for a command no loaded plugin provides, with why plugins failed."""
        why = "".join(f"\n  {b}" for b in self.broken)
        return f"{what}{'; plugins that did not load:' if why else ''}{why}"


def discover(commands: Commands) -> None:
    """Register every plugin: entry points first, then shipped modules not registered so."""
    registers: dict[str, Callable[[], Register]] = {}
    for ep in entry_points(group=GROUP):
        registers.setdefault(ep.value.split(":")[0].strip(), ep.load)
    for module in SOURCE_PLUGINS:
        if module not in registers and _importable(module):
            registers[module] = _loader(module)
    for name, load in registers.items():
        try:
            register = load()
        except ImportError as exc:  # installed but a dependency is missing: say so, go on
            commands.broken.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        register(commands)


def _loader(module: str) -> Callable[[], Register]:
    def load() -> Register:
        register: Register = importlib.import_module(module).register
        return register

    return load


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is not there
        return False
