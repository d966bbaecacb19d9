"""`kairos` finds the connectors' commands without the engine importing them, and says clearly
when they are not there."""

from __future__ import annotations

import argparse
from importlib.metadata import EntryPoint

import pytest

from engine import cli, commands
from engine.commands import GROUP, Commands, discover


def fresh() -> Commands:
    return Commands(argparse.ArgumentParser().add_subparsers(dest="command"))


def test_the_installed_project_finds_the_connectors_commands_through_its_entry_point() -> None:
    found = fresh()
    discover(found)
    assert set(found.handlers) == {"connect", "collect", "templates"}
    assert found.run_over_http is not None and not found.broken
    assert len(found.checks) == 1  # the templates, under `rules check` and `rules deploy`


def test_without_connectors_run_over_http_says_what_is_missing(monkeypatch, capsys) -> None:
    monkeypatch.setattr(commands, "entry_points", lambda group: [])
    with pytest.raises(SystemExit, match="2"):
        cli.main(["run", "--http"])
    err = capsys.readouterr().err
    assert "run --http needs the HTTP collector of the connectors package" in err


def test_a_plugin_that_cannot_load_is_named_with_its_reason(monkeypatch, capsys) -> None:
    ep = EntryPoint(name="broken", value="no_such_package.cli:register", group=GROUP)
    monkeypatch.setattr(commands, "entry_points", lambda group: [ep])
    with pytest.raises(SystemExit, match="2"):
        cli.main(["connect", "email"])
    err = capsys.readouterr().err
    assert "unknown command 'connect'; plugins that did not load:" in err
    assert "no_such_package.cli:register: ModuleNotFoundError: No module named 'no_such_package'" in err
