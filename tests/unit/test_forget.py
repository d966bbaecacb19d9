"""Right to be forgotten in the pure steps: state, identity records and merged contacts erased;
later events start a contact with no history. No I/O."""

from __future__ import annotations

from pathlib import Path

import orjson

from engine.cli import main
from engine.model.actions import Action
from engine.pipeline import Pipeline
from engine.runtime.embedded import EmbeddedRuntime
from tests.helpers import open_policy, spine_rules
from tests.integration.journey import T0, segment


def order(n: int, user: str, category: str = "books", anon: str | None = None) -> bytes:
    ids = {"anonymousId": anon} if anon else {}
    return segment("track", f"o{n}-{user}", T0 + n, userId=user, event="Order Completed",
                   properties={"products": [{"category": category}]}, **ids)


def runtime(actions: list[Action], data_dir: Path | None = None) -> EmbeddedRuntime:
    return EmbeddedRuntime(Pipeline(spine_rules(), open_policy()), on_action=actions.append,
                           data_dir=data_dir)


def test_a_forgotten_contact_leaves_nothing_and_comes_back_as_new() -> None:
    actions: list[Action] = []
    rt = runtime(actions)
    rt.submit(segment("identify", "id1", T0, userId="ada", anonymousId="anon-1",
                      traits={"email": "ada@example.com"}), "clickstream")
    rt.submit(order(1, "ada"), "clickstream")  # a customer now: email soft opt-in
    rt.submit(order(2, "ada"), "clickstream")  # not a first purchase any more
    assert [a.trigger_event_id for a in actions] == ["o1-ada"]
    contact = actions[0].contact_id
    for ident in ("user:ada", "email:ada@example.com", "anon:anon-1"):
        assert rt.identity.get(ident) == contact.encode()

    rt.forget("email:ada@example.com")  # by any identifier
    rt.flush()
    assert rt.contacts.get(contact) is None
    for ident in ("user:ada", "email:ada@example.com", "anon:anon-1"):
        assert rt.identity.get(ident) is None

    rt.submit(segment("identify", "id3", T0 + 2, userId="ada",
                      traits={"email": "ada@example.com"}), "clickstream")  # signs up again
    rt.submit(order(3, "ada"), "clickstream")  # a first purchase again: no history survived
    assert [a.trigger_event_id for a in actions] == ["o1-ada", "o3-ada"]


def test_forgetting_a_merged_contact_erases_the_one_it_became() -> None:
    actions: list[Action] = []
    rt = runtime(actions)
    # An anonymous visitor's order, then the visitor logs in: the device's contact moves into
    # the user's. Forget the merged-away id.
    rt.submit(segment("track", "o1", T0 + 1, anonymousId="dev-9", event="Order Completed",
                      properties={"products": [{"category": "books"}]}), "clickstream")
    rt.submit(order(2, "rob", category="garden", anon="dev-9"), "clickstream")
    rt.flush()
    ids = {key for key, _ in rt.contacts.items()}
    assert len(ids) == 2  # the visitor's, merged away, and rob's
    gone = next(c for c in ids if rt.identity.get("user:rob") != c.encode())
    rt.forget(gone)
    rt.flush()
    assert all(rt.contacts.get(c) is None for c in ids)
    assert rt.identity.get("anon:dev-9") is None and rt.identity.get("user:rob") is None


def test_forgetting_one_person_keeps_the_device_they_shared_with_another() -> None:
    actions: list[Action] = []
    rt = runtime(actions)
    rt.submit(order(1, "bob", anon="dev-9"), "clickstream")
    rt.submit(order(2, "rob", category="garden", anon="dev-9"), "clickstream")  # rob now
    rt.flush()
    rob = rt.identity.get("user:rob")
    rt.forget("user:bob")
    rt.flush()
    assert rt.identity.get("user:bob") is None
    assert rob is not None and rt.identity.get("anon:dev-9") == rob
    assert rt.contacts.get(rob.decode()) is not None


def test_kairos_contacts_show_and_forget_on_an_embedded_directory(tmp_path: Path,
                                                                  capsys: object) -> None:
    actions: list[Action] = []
    rt = runtime(actions, tmp_path / "embedded")
    rt.submit(segment("identify", "id1", T0, userId="cy", traits={"email": "cy@example.com"}),
              "clickstream")
    rt.submit(order(1, "cy"), "clickstream")
    rt.close()
    assert main(["contacts", "show", "email:cy@example.com", "--data-dir",
                 str(tmp_path / "embedded")]) == 0
    shown = orjson.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert shown["contact"]["contact_id"] == actions[0].contact_id
    assert shown["contact"]["traits"]["email"] == "cy@example.com"
    assert shown["identity_records"]["user:cy"] == actions[0].contact_id
    assert main(["contacts", "forget", "user:cy", "--data-dir", str(tmp_path / "embedded")]) == 0
    capsys.readouterr()  # type: ignore[attr-defined]
    assert main(["contacts", "show", "user:cy", "--data-dir", str(tmp_path / "embedded")]) == 1
