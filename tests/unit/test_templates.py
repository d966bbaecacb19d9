"""Message templates: rendering, strictness, the sandbox, SMS segments, locales, the checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.delivery import Permanent
from connectors.templates import Library, TemplateProblem, segments
from connectors.templates.check import check, check_rules_dir
from engine.cli import main
from engine.config import Settings
from engine.model.actions import Action
from engine.ops.rules_check import check as rules_check

PYTHON = '''
from engine.sdk import Context, Proposal, on, rule


@rule("hello", triggers=[on("page")])
def hello(ctx: Context) -> Proposal:
    return Proposal(action="hello", channels=("email", "sms"), payload={"product": "tent", "price": 9.5})
'''


def action(channel: str = "email", **profile: str) -> Action:
    return Action(action_id="a1", contact_id="c1", channel=channel, action="hello",
                  rule_id="hello", rule_version=1, score=1.0, reason="",
                  trigger_event_id="e1", event_time="2026-06-01T09:30:00Z",
                  decided_at="2026-06-01T09:30:00Z", expires_at="2026-06-02T09:30:00Z",
                  payload={"product": "<tent>", "price": 1234.5}, profile=profile)


def write(root: Path, **files: str) -> Path:
    for name, text in files.items():
        path = root / "hello" / name.replace("__", ".")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


EMAIL = {"email__subject": "Hi {{ contact.first_name }}",
         "email__html": "<p>{{ action.payload.product }} {{ links.unsubscribe }}</p>",
         "email__txt": "{{ action.payload.product }} for {{ action.payload.price|money }}"}


def test_email_parts_are_personal_and_only_html_is_escaped(tmp_path: Path) -> None:
    lib = Library(write(tmp_path, **EMAIL), links=lambda a: {"unsubscribe": "https://u/x"})
    parts = lib.render(action(first_name="Ada", locale="en-US"))
    assert parts == {"subject": "Hi Ada", "html": "<p>&lt;tent&gt; https://u/x</p>",
                     "text": "<tent> for €1,234.50"}


def test_an_undefined_variable_names_the_template_and_the_variable(tmp_path: Path) -> None:
    lib = Library(write(tmp_path, **EMAIL), links=lambda a: {"unsubscribe": "u"})
    with pytest.raises(TemplateProblem, match=r"template hello/email\.subject line 1: "
                                              r"UndefinedError: contact\.first_name is undefined"):
        lib.render(action())
    with pytest.raises(Permanent, match=r"hello/email\.subject.*contact\.first_name"):
        lib.content(action())


def test_a_missing_key_deep_in_the_payload_is_named_by_its_path(tmp_path: Path) -> None:
    lib = Library(write(tmp_path, sms__txt="{{ action.payload['lines'][0].sku }}"))
    act = action("sms")
    act.payload["lines"] = [{"name": "tent"}]
    with pytest.raises(TemplateProblem, match=r"action\.payload\.lines\[0\]\.sku is undefined"):
        lib.render(act)


def test_an_error_in_a_shared_layout_names_the_layout_and_its_line(tmp_path: Path) -> None:
    (tmp_path / "_layout").mkdir()
    (tmp_path / "_layout" / "base.txt").write_text("Hi\n{{ links.unsubscribe }}\n{% block b %}"
                                                   "{% endblock %}")
    lib = Library(write(tmp_path, sms__txt='{% extends "_layout/base.txt" %}{% block b %}x'
                                           '{% endblock %}'))
    with pytest.raises(TemplateProblem, match=r"template hello/sms\.txt \(_layout/base\.txt "
                                              r"line 2\): UndefinedError: links\.unsubscribe"):
        lib.render(action("sms"))


def test_the_sandbox_keeps_templates_away_from_python_internals(tmp_path: Path) -> None:
    lib = Library(write(tmp_path, sms__txt="{{ ''.__class__.__mro__[1].__subclasses__() }}"))
    with pytest.raises(TemplateProblem, match=r"hello/sms\.txt.*SecurityError.*__class__"):
        lib.render(action("sms"))


def test_a_missing_template_is_a_problem_never_filler(tmp_path: Path) -> None:
    with pytest.raises(TemplateProblem, match=r"no template hello/push\.toml"):
        Library(tmp_path).render(action("push"))


@pytest.mark.parametrize(("text", "encoding", "units", "count"), [
    ("a" * 160, "GSM-7", 160, 1), ("a" * 161, "GSM-7", 161, 2), ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3), ("€" * 80, "GSM-7", 160, 1), ("a" * 159 + "€", "GSM-7", 161, 2),
    ("é" * 160, "GSM-7", 160, 1), ("ж" * 70, "UCS-2", 70, 1), ("ж" * 71, "UCS-2", 71, 2),
    ("ж" * 134, "UCS-2", 134, 2), ("ж" * 135, "UCS-2", 135, 3), ("🙂" * 35, "UCS-2", 70, 1),
])
def test_sms_segments_gsm7_and_ucs2(text: str, encoding: str, units: int, count: int) -> None:
    assert segments(text) == (encoding, units, count)


def test_an_escape_pair_is_never_split_between_parts() -> None:
    assert segments("a" * 152 + "€" + "a" * 152).parts == 3  # the € moves to part 2 whole


def test_an_sms_over_the_segment_limit_is_refused(tmp_path: Path) -> None:
    lib = Library(write(tmp_path, sms__txt="{{ 'x' * 200 }}"), sms_max_segments=1)
    with pytest.raises(TemplateProblem, match=r"hello/sms\.txt: 2 SMS segments \(GSM-7, 200 "
                                              r"units\), the limit is 1"):
        lib.render(action("sms"))
    assert Library(tmp_path).render(action("sms"))["segments"] == 2


@pytest.mark.parametrize(("locale", "money", "day"), [
    ("en-US", "€1,234.50", "Jun 1, 2026"), ("fr-FR", "1\u202f234,50\xa0€", "1 juin 2026"),
    ("de_DE", "1.234,50\xa0€", "01.06.2026"), ("xx-unknown", "€1,234.50", "Jun 1, 2026"),
])
def test_money_and_dates_in_the_contacts_locale(tmp_path: Path, locale: str, money: str,
                                                day: str) -> None:
    lib = Library(write(tmp_path, sms__txt="{{ action.payload.price|money }} "
                                           "{{ action.decided_at|date }}"))
    assert lib.render(action("sms", locale=locale))["text"] == f"{money} {day}"


def test_push_fields_render_and_a_long_title_is_refused(tmp_path: Path) -> None:
    lib = Library(write(tmp_path, push__toml='title = "{{ action.payload.product }}"\n'
                                             'body = "b"\ndeep_link = "app://x/{{ action.id }}"'))
    assert lib.render(action("push")) == {"title": "<tent>", "body": "b",
                                          "deep_link": "app://x/a1"}
    write(tmp_path, push__toml='title = "{{ \'t\' * 70 }}"\nbody = "b"')
    with pytest.raises(TemplateProblem, match=r"push\.toml: title is 70 characters"):
        lib.render(action("push"))


def test_structured_templates_that_do_not_parse_or_lack_fields(tmp_path: Path) -> None:
    lib = Library(write(tmp_path, web__json="{nope", crm__toml='notes = "n"'))
    with pytest.raises(TemplateProblem, match=r"hello/web\.json: does not parse"):
        lib.render(action("web"))
    with pytest.raises(TemplateProblem, match=r"hello/crm\.toml: lacks the field subject"):
        lib.render(action("crm"))


def test_templates_check_names_the_template_and_the_variable(tmp_path: Path) -> None:
    write(tmp_path, sms__txt="{{ action.payload.colour }}")
    problems = check(Library(tmp_path), {"hello": {"product": "tent"}})
    assert len(problems) == 2  # once per sample contact
    assert "template hello/sms.txt line 1: UndefinedError" in problems[0]
    assert "action.payload.colour is undefined (contact c-sample)" in problems[0]
    unsampled = check(Library(tmp_path), {})[0]
    assert "action.payload.colour is undefined" in unsampled
    assert unsampled.endswith("no sample payload (the dry run never proposed it), so it was "
                              "rendered with none: add samples/hello.json")
    write(tmp_path, sms__txt="Hello")
    assert check(Library(tmp_path), {}) == []  # needs no payload: fine without a sample


def rules_with(tmp_path: Path, **templates: str) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "hello.py").write_text(PYTHON)
    write(d / "templates", **templates)
    return d


def test_a_channel_without_a_template_fails_rules_check(tmp_path: Path) -> None:
    d = rules_with(tmp_path, **EMAIL)
    problems = rules_check(d).problems
    assert problems == [f"hello.py: rule 'hello': action 'hello' can go out on sms but "
                        f"{d / 'templates'} has no template hello/sms.txt"]
    assert main(["rules", "check", str(d)]) == 1


def test_rules_check_and_deploy_refuse_a_template_that_does_not_render(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = rules_with(tmp_path, **{**EMAIL, "email__subject": "Hi",
                                "sms__txt": "{{ action.payload.nope }}"})
    assert check_rules_dir(d, Settings())[0].startswith("template hello/sms.txt line 1")
    assert main(["rules", "deploy", str(d)]) == 1  # refused before any broker is asked
    assert "hello/sms.txt line 1: UndefinedError" in capsys.readouterr().err
    (d / "templates" / "hello" / "sms.txt").write_text("{{ action.payload.product }}")
    assert main(["templates", "check", str(d)]) == 0


def test_preview_renders_a_real_contacts_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"messageId":"m1","type":"identify","timestamp":"2026-11-02T08:10:07Z","userId":"u1",'
        '"context":{"locale":"fr-FR"},"traits":{"email":"ada@example.com","firstName":"Ada",'
        '"consent":{"email":true}}}\n'
        '{"messageId":"m2","type":"track","timestamp":"2026-11-02T08:11:00Z","userId":"u1",'
        '"event":"Order Completed","properties":{"order_id":"o1","products":'
        '[{"product_id":"b1","category":"books","price":12}]}}\n')
    data = tmp_path / "data"
    assert main(["run", "--events", str(events), "--data-dir", str(data),
                 "--out", str(tmp_path / "actions.jsonl")]) == 0
    capsys.readouterr()
    assert main(["templates", "preview", "welcome-books", "--channel", "email",
                 "--contact", "user:u1", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "--- subject\nWelcome to books" in out
    assert "Hello Ada," in out and 'lang="fr-FR"' in out and "first books order" in out
    assert main(["templates", "preview", "welcome-books", "--channel", "sms",
                 "--contact", "user:u1", "--data-dir", str(data)]) == 1
    assert "no template welcome-books/sms.txt" in capsys.readouterr().err
