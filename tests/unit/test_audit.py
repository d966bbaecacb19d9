"""`kairos audit`: each violation kind found once in a small handmade history, nothing else."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine.model import actions as action_codec
from engine.model.actions import Action
from engine.model.events import iso
from engine.ops.audit import History, audit, run

T0 = 1_790_000_000.0


def seg(kind: str, mid: str, t: float, **fields: object) -> dict[str, object]:
    return {"messageId": mid, "type": kind, "timestamp": iso(t), **fields}


HISTORY = [
    seg("identify", "ann-id", T0, userId="ann", anonymousId="home",
        traits={"email": "Ann@example.com", "consent": {"email": True}}),
    seg("identify", "cid-id", T0 + 5, userId="cid", traits={"name": "Cid"}),  # no address
    seg("identify", "bob-id", T0 + 10, userId="bob", anonymousId="home",
        traits={"email": "bob@example.com"}),
    seg("page", "home-p", T0 + 15, anonymousId="home", name="/"),  # bob is logged in there
    seg("page", "ann-p", T0 + 20, userId="ann", name="/"),
    seg("track", "cid-o", T0 + 30, userId="cid", event="Order Completed"),
    {"event": "unsubscribe", "email": "ann@example.com", "timestamp": int(T0 + 100),
     "sg_event_id": "sg-unsub"},
    seg("track", "bob-o", T0 + 200, userId="bob", event="Order Completed"),
]


def act(aid: str, trigger: str, at: float, channel: str = "email", recipient: str | None = None,
        **kw: object) -> Action:
    return Action(action_id=aid, contact_id="c1", channel=channel, action="offer", rule_id="r",
                  rule_version=1, score=1.0, reason="", trigger_event_id=trigger,
                  event_time=iso(at), decided_at=iso(at), expires_at=iso(at + 3600),
                  recipient=recipient, **kw)  # type: ignore[arg-type]


ACTIONS = [
    act("missing", "cid-o", T0 + 30),  # email, nobody to send it to
    act("stranger", "ann-p", T0 + 50, recipient="bob@example.com"),  # ann's action, bob's inbox
    act("withdrawn", "ann-p", T0 + 100, recipient="ann@example.com"),  # at the unsubscribe
    # Clean ones: the shared device's anonymous page is bob's; a receipt after an unsubscribe;
    # a web action needs no address; a control-group action is never sent.
    act("ok-shared", "home-p", T0 + 15, recipient="bob@example.com"),
    act("ok-receipt", "ann-p", T0 + 150, recipient="ann@example.com",
        action_class="transactional"),
    act("ok-web", "cid-o", T0 + 30, channel="web"),
    act("ok-control", "cid-o", T0 + 30, control_group=True),
    act("ok-bob", "bob-o", T0 + 200, recipient="bob@example.com"),
    act("ok-before", "ann-p", T0 + 99, recipient="ann@example.com"),
]


@pytest.fixture
def history_file(tmp_path: Path) -> Path:
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in HISTORY) + b"not json\n")
    return path


def test_each_violation_kind_is_found_once_and_clean_actions_pass(history_file: Path) -> None:
    report = audit(History.read(history_file), ACTIONS)
    assert {f.action.action_id: f.kind for f in report.findings} == {
        "missing": "no_recipient", "stranger": "other_persons_address",
        "withdrawn": "after_withdrawal"}
    assert report.actions == len(ACTIONS) - 1 and report.events == len(HISTORY)
    detail = {f.kind: f.detail for f in report.findings}
    assert detail["other_persons_address"] == "bob@example.com belongs to ['bob'], not ['ann']"
    assert detail["after_withdrawal"].startswith("ann@example.com withdrew email consent")


def test_a_spam_report_is_never_undone_and_a_later_opt_in_undoes_an_unsubscribe(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in [
        *HISTORY,
        # ann opts in again on the site, without repeating the address she gave before
        seg("identify", "ann-again", T0 + 300, userId="ann", traits={"consent": {"email": True}}),
        {"event": "spamreport", "email": "bob@example.com", "timestamp": int(T0 + 300),
         "sg_event_id": "sg-spam"},
        seg("identify", "bob-again", T0 + 400, userId="bob",
            traits={"email": "bob@example.com", "consent": {"email": True}}),
    ]))
    later = [act("ann-back", "ann-p", T0 + 500, recipient="ann@example.com"),
             act("bob-spam", "bob-o", T0 + 500, recipient="bob@example.com")]
    report = audit(History.read(path), later)
    assert [(f.action.action_id, f.detail) for f in report.findings] == [
        ("bob-spam", "bob@example.com reported spam")]


def test_the_command_prints_the_counts_and_fails_when_anything_is_found(
    history_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    actions = tmp_path / "actions.jsonl"
    actions.write_bytes(b"".join(action_codec.encode(a) + b"\n" for a in ACTIONS))
    assert run(str(history_file), str(actions)) == 1
    out = capsys.readouterr().out
    assert "no_recipient:                    1" in out and "after_withdrawal:                1" in out
    actions.write_bytes(b"".join(action_codec.encode(a) + b"\n" for a in ACTIONS[3:]))
    assert run(str(history_file), str(actions)) == 0
