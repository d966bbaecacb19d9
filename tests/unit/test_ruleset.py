"""Loading, checking, disabling and bundling rule directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import RuleError
from engine.ops.rules_check import check
from engine.runtime import rule_updates as rule_deploy
from engine.sdk.ruleset import DEFAULT_RULES_DIR, RuleSet
from tests.helpers import rules_dir

GOOD = '''
from engine.sdk import Context, Proposal, on, rule


@rule("hello", version=2, triggers=[on("page")])
def hello(ctx: Context) -> Proposal:
    return Proposal(action="hello", channels=("web",))
'''


def test_the_shipped_rules_load_and_pass_their_check() -> None:
    checked = check(DEFAULT_RULES_DIR)
    assert checked.problems == []
    assert checked.rules is not None and len(checked.rules) >= 4


def test_duplicate_ids_name_both_files(tmp_path: Path) -> None:
    d = rules_dir(tmp_path, a__py=GOOD, b__py=GOOD)
    with pytest.raises(RuleError, match=r"b\.py: duplicate rule id 'hello' \(also in a\.py\)"):
        RuleSet.load(d)


def test_an_import_error_names_the_module(tmp_path: Path) -> None:
    d = rules_dir(tmp_path, broken__py="import no_such_module_here\n")
    with pytest.raises(RuleError, match=r"broken\.py:1: import failed: ModuleNotFoundError: .*no_such_module_here"):
        RuleSet.load(d)


def test_check_reports_unknown_event_names_and_what_raised_in_a_dry_run(tmp_path: Path) -> None:
    d = rules_dir(tmp_path, bad__py='''
from engine.sdk import Context, Proposal, on, rule


@rule("typo-event", triggers=[on("email", "opne")])
def typo_event(ctx: Context) -> None:
    return None


@rule("typo-channel", triggers=[on("track", "Order Completed")])
def typo_channel(ctx: Context) -> Proposal:
    return Proposal(action="x", channels=("emial",))


@rule("unknown-field", triggers=[on("page")])
def unknown_field(ctx: Context) -> None:
    return ctx.state.favourite_colour
''')
    checked = check(d)
    assert checked.rules is not None
    text = "\n".join(checked.problems)
    assert "bad.py: rule 'typo-event': unknown email event 'opne'" in text
    assert ("bad.py:12: rule 'typo-channel' raised ValueError: proposal 'x': unknown channel "
            "'emial'") in text
    assert "bad.py:17: rule 'unknown-field' raised AttributeError" in text
    assert "favourite_colour" in text
    assert main(["rules", "check", str(d)]) == 1


def test_disabled_rules_are_listed_but_never_run(tmp_path: Path) -> None:
    d = rules_dir(tmp_path, hello__py=GOOD)
    assert main(["rules", "disable", "hello", "--dir", str(d)]) == 0
    rules = RuleSet.load(d)
    assert "hello" in rules.rules and "hello" in rules.disabled
    assert rules.active("hello") is None
    from engine.testing import Scenario

    assert Scenario(rules).page("u1", "/") == []
    assert main(["rules", "enable", "hello", "--dir", str(d)]) == 0
    assert Scenario(d).page("u1", "/")[0].rule_version == 2
    assert main(["rules", "disable", "nope", "--dir", str(d)]) == 1


def test_bundles_round_trip_and_are_content_addressed(tmp_path: Path) -> None:
    d = rules_dir(tmp_path, hello__py=GOOD, data__csv="a,b\n")
    bundle = rule_deploy.decode(rule_deploy.encode(rule_deploy.make_bundle(d)))
    assert set(bundle.files) == {"hello.py", "data.csv"}
    where = rule_deploy.materialize(bundle, tmp_path / "deployed")
    assert where.name == bundle.digest and (where / "data.csv").read_text() == "a,b\n"
    swapped: list[RuleSet] = []
    assert rule_deploy.apply(bundle, tmp_path / "deployed", swapped.append)
    assert swapped[0].rules["hello"].version == 2


def test_the_templates_travel_in_the_bundle_from_beside_the_rules_or_elsewhere(
        tmp_path: Path) -> None:
    shipped = rule_deploy.make_bundle(DEFAULT_RULES_DIR).files
    assert "templates/cart-reminder/email.subject" in shipped
    assert "templates/_layout/email.html" in shipped
    elsewhere = tmp_path / "tpl"
    (elsewhere / "hello").mkdir(parents=True)
    (elsewhere / "hello" / "web.json").write_text("{}")
    d = rules_dir(tmp_path, a__py=GOOD)
    files = rule_deploy.make_bundle(d, elsewhere).files
    assert files["templates/hello/web.json"] == b"{}" and "a.py" in files


def test_a_bundle_that_does_not_load_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    d = rules_dir(tmp_path, hello__py=GOOD)
    bundle = rule_deploy.make_bundle(d)
    broken = rule_deploy.Bundle(files={**bundle.files, "x.py": b"raise SystemError\n"},
                                created_at=0)
    swapped: list[RuleSet] = []
    assert not rule_deploy.apply(broken, tmp_path / "deployed", swapped.append)
    assert swapped == []
    with pytest.raises(RuleError):
        rule_deploy.make_bundle(rules_dir(tmp_path, y__py="raise ValueError('no')\n"))


def test_a_directory_watcher_swaps_rules_on_change_and_ignores_broken_edits(
    tmp_path: Path,
) -> None:
    d = rules_dir(tmp_path, hello__py=GOOD)
    swapped: list[RuleSet] = []
    watcher = rule_deploy.DirectoryWatcher(d, swapped.append)
    assert not watcher.poll()
    (d / "hello.py").write_text(GOOD.replace("version=2", "version=3"))
    assert watcher.poll() and swapped[-1].rules["hello"].version == 3
    (d / "hello.py").write_text("this is not python")
    assert not watcher.poll() and len(swapped) == 1


def test_the_shipped_rules_directory_can_be_copied_and_loaded(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(DEFAULT_RULES_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert RuleSet.load(copy).describe() == RuleSet.load(DEFAULT_RULES_DIR).describe()
