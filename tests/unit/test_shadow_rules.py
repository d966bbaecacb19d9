"""Marking rules shadow or live: in Python, in declarative files, in `modes.txt`, from the CLI,
through a deploy's bundle, and in a replay's report."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import RuleError
from engine.ops.generator import JourneyGenerator
from engine.ops.replay import replay
from engine.runtime import rule_updates as rule_deploy
from engine.sdk.ruleset import MODES_FILE, RuleSet
from tests.helpers import rules_dir

PYTHON = '''
from engine.sdk import Context, Proposal, on, rule


@rule("hello", triggers=[on("page")])
def hello(ctx: Context) -> Proposal:
    return Proposal(action="hello", channels=("web",))


@rule("tried", triggers=[on("page")], mode="shadow")
def tried(ctx: Context) -> Proposal:
    return Proposal(action="tried", channels=("web",))
'''

DECLARATIVE = '''
[[rule]]
id = "vip"
triggers = ["track:Order Completed"]
mode = "{mode}"
  [[rule.propose]]
  action = "vip-thank-you"
  channels = ["crm"]
'''


def test_python_and_declarative_rules_declare_their_mode(tmp_path: Path) -> None:
    rules = RuleSet.load(rules_dir(tmp_path, a__py=PYTHON,
                                   vip__toml=DECLARATIVE.format(mode="shadow")))
    assert {r.id: r.mode for r in rules.rules.values()} == {
        "hello": "live", "tried": "shadow", "vip": "shadow"}
    assert rules.describe() == "hello@v1, tried@v1 (shadow), vip@v1 (shadow)"


def test_a_declarative_mode_other_than_live_or_shadow_names_the_file_and_field(
        tmp_path: Path) -> None:
    d = rules_dir(tmp_path, vip__toml=DECLARATIVE.format(mode="dark"))
    with pytest.raises(RuleError, match=r"vip\.toml: .*`\$\.rule\[0\]\.mode`"):
        RuleSet.load(d)


def test_a_python_rule_with_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    d = rules_dir(tmp_path, a__py=PYTHON.replace('mode="shadow"', 'mode="dark"'))
    with pytest.raises(RuleError, match=r"a\.py: rule 'tried': mode 'dark' is not one of"):
        RuleSet.load(d)


def test_modes_txt_overrides_a_rules_own_mode(tmp_path: Path) -> None:
    d = rules_dir(tmp_path, a__py=PYTHON, modes__txt="hello shadow\ntried live  # ready\n")
    rules = RuleSet.load(d)
    assert (rules.rules["hello"].mode, rules.rules["tried"].mode) == ("shadow", "live")


@pytest.mark.parametrize(("line", "error"), [
    ("nobody shadow", r"modes\.txt: no rule 'nobody' is loaded"),
    ("hello dark", r"modes\.txt: 'hello dark': expected `rule-id mode`"),
    ("hello", r"modes\.txt: 'hello': expected `rule-id mode`"),
])
def test_a_bad_modes_txt_line_is_an_error(tmp_path: Path, line: str, error: str) -> None:
    d = rules_dir(tmp_path, a__py=PYTHON, modes__txt=line + "\n")
    with pytest.raises(RuleError, match=error):
        RuleSet.load(d)


def test_shadow_and_promote_edit_modes_txt_and_list_shows_the_mode(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = rules_dir(tmp_path, a__py=PYTHON)
    for action in ("hello", "tried"):  # `rules list` checks the rules, templates included
        (d / "templates" / action).mkdir(parents=True)
        (d / "templates" / action / "web.json").write_text('{"headline": "{{ action.name }}"}')
    assert main(["rules", "shadow", "hello", "--dir", str(d)]) == 0
    assert (d / MODES_FILE).read_text() == "hello shadow\n"
    assert main(["rules", "promote", "tried", "--dir", str(d)]) == 0
    assert (d / MODES_FILE).read_text() == "hello shadow\ntried live\n"
    assert main(["rules", "promote", "hello", "--dir", str(d)]) == 0
    assert (d / MODES_FILE).read_text() == "hello live\ntried live\n"
    capsys.readouterr()
    assert main(["rules", "shadow", "tried", "--dir", str(d)]) == 0
    assert "tried: shadow in " in capsys.readouterr().out
    assert main(["rules", "list", str(d)]) == 0
    listed = {line.split()[0]: line.split()[3] for line in capsys.readouterr().out.splitlines()
              if line.startswith(("hello", "tried"))}
    assert listed == {"hello": "live", "tried": "shadow"}


def test_an_unknown_rule_id_cannot_be_shadowed_or_promoted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = rules_dir(tmp_path, a__py=PYTHON)
    assert main(["rules", "promote", "nobody", "--dir", str(d)]) == 1
    assert "no rule 'nobody'" in capsys.readouterr().err
    assert not (d / MODES_FILE).exists()


def test_the_deploy_bundle_carries_modes_txt_so_every_worker_switches(tmp_path: Path) -> None:
    d = rules_dir(tmp_path, a__py=PYTHON)
    assert main(["rules", "promote", "tried", "--dir", str(d)]) == 0
    bundle = rule_deploy.decode(rule_deploy.encode(rule_deploy.make_bundle(d)))
    assert bundle.files[MODES_FILE] == b"tried live\n"
    applied: list[RuleSet] = []
    assert rule_deploy.apply(bundle, tmp_path / "deployed", applied.append)
    assert applied[0].rules["tried"].mode == "live"


def test_a_replay_reports_shadow_actions_per_rule_and_writes_them_apart(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"".join(g.value + b"\n" for g in JourneyGenerator(40, seed=3)))
    d = rules_dir(tmp_path, a__py=PYTHON)
    outputs = []
    for jobs in (1, 2):
        out, shadow = io.BytesIO(), io.BytesIO()
        report = replay(history, RuleSet.load(d), out, jobs=jobs, shadow_out=shadow)
        outputs.append((out.getvalue(), shadow.getvalue(), report.shadow, report.fires))
    assert outputs[0] == outputs[1]  # one process or two, the same files
    live, shadowed, per_rule, fires = outputs[0]
    assert per_rule["tried"] == len(shadowed.splitlines()) > 0 and "tried" not in fires
    assert b'"rule_id":"tried"' not in live and b'"rule_id":"hello"' not in shadowed
    assert "shadow actions per rule (never delivered):" in report.render()
