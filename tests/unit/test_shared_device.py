"""Two people on one browser stay two people: consent, erasure and journeys never mix."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from engine.core.identity import contact_id_for
from engine.core.policy import Policy
from engine.errors import PolicyError
from engine.ops.explain import render
from engine.testing import Scenario


def two_logins() -> Scenario:
    s = Scenario()
    s.page("anon-dev", "/home")  # before anyone logs in
    s.segment("identify", "ada", anonymousId="anon-dev",
              traits={"email": "ada@example.com", "consent": {"email": True}})
    s.page("anon-dev", "/ada-browsing")
    s.advance(minutes=1)
    s.segment("identify", "bea", anonymousId="anon-dev",
              traits={"email": "bea@example.com", "consent": {"email": True}})
    return s


def test_a_shared_browser_follows_the_newest_login_and_history_stays_put() -> None:
    s = two_logins()
    ada, bea = s.contact("ada"), s.contact("bea")
    assert ada.contact_id != bea.contact_id
    assert ada.count("page") == 2 and bea.count("page") == 0  # what happened before stays
    assert s.contact("anon:anon-dev").contact_id == bea.contact_id  # what comes next is bea's
    [refusal] = ada.refused
    assert (refusal.identifier, refusal.kind, refusal.other) == (
        "anon:anon-dev", "anon", bea.contact_id)
    assert "user:bea would be merged with user:ada" in render(ada)
    [told] = bea.refused  # the login's side shows it too, counted once
    assert (told.identifier, told.other) == ("anon:anon-dev", ada.contact_id)
    scraped = generate_latest(s.runtime.pipeline.metrics.registry).decode()
    assert 'kairos_identity_merges_refused_total{kind="anon"} 1.0' in scraped


def test_one_unsubscribes_the_other_still_gets_her_cart_reminder() -> None:
    s = two_logins()
    s.email("ada@example.com", "unsubscribe")
    s.track("anon-dev", "Product Added", properties={"product_id": "sku-1"})  # bea, anonymous
    [reminder] = [a for a in s.advance(minutes=31) if a.rule_id == "cart-abandoned"]
    bea = s.contact("bea")
    assert reminder.contact_id == bea.contact_id and reminder.recipient == "bea@example.com"
    assert s.contact("ada").consent["email"].granted is False and bea.consent["email"].granted

    kept = s.runtime.contacts[bea.contact_id]
    s.runtime.forget("user:ada")
    s.runtime.flush()
    assert s.runtime.contacts.get(s.contact("bea").contact_id) == kept
    assert s.contact("anon:anon-dev").contact_id == bea.contact_id
    with pytest.raises(KeyError, match="no contact known by 'user:ada'"):
        s.contact("ada")


def test_an_email_beyond_its_limit_is_refused_and_unlinked(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[identity.limits]\nemail = 1\n")
    s = Scenario([], policy=Policy.load(path))
    s.segment("identify", "ada", traits={"email": "ada@example.com"})
    s.segment("identify", "ada", traits={"email": "ada@work.example"})
    ada = s.contact("ada")
    assert [i for i in ada.identifiers if i.startswith("email:")] == ["email:ada@example.com"]
    assert ada.refused[0].reason == "beyond the limit of 1 email per contact"
    assert s.runtime.identity.get("email:ada@work.example") is None
    s.email("ada@work.example", "open")  # an address the contact refused starts its own
    assert s.contact("email:ada@work.example").contact_id == contact_id_for(
        "email:ada@work.example")


def test_identity_policy_rejects_a_second_user_id(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[identity.limits]\nuser = 2\n")
    with pytest.raises(PolicyError, match="a contact holds one userId"):
        Policy.load(path)
    path.write_text("[identity.wins]\nphone = \"newest\"\n")
    with pytest.raises(PolicyError, match="unknown identifier kind 'phone'"):
        Policy.load(path)


def test_where_the_newest_wins_the_oldest_beyond_the_limit_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[identity.limits]\nanon = 1\n")
    s = Scenario([], policy=Policy.load(path))
    s.segment("identify", "ada", anonymousId="anon-phone")
    s.segment("identify", "ada", anonymousId="anon-laptop")
    ada = s.contact("ada")
    assert [i for i in ada.identifiers if i.startswith("anon:")] == ["anon:anon-laptop"]
    assert (ada.refused[0].identifier, ada.refused[0].kind) == ("anon:anon-phone", "anon")
    assert s.runtime.identity.get("anon:anon-phone") is None
    assert s.contact("anon:anon-laptop").contact_id == ada.contact_id
