"""One contact per person: linking, merging, and never merging on an unverified claim."""

from __future__ import annotations

from engine.core.identity import contact_id_for, identifiers
from engine.model import state as state_codec
from engine.model.events import decode
from engine.testing import Scenario


def root_of(s: Scenario, identifier: str) -> str:
    return s.contact(identifier).contact_id


def test_anonymous_then_identified_then_email_then_social_is_one_contact() -> None:
    s = Scenario()
    s.page("anon-1", "/home")
    s.track("anon-1", "Product Added", properties={"product_id": "sku-1"})  # a pending timer
    s.segment("identify", "u1", anonymousId="anon-1",
              traits={"email": "Ada@Example.com", "social_handles": {"twitter": "@Ada"},
                      "consent": {"email": True}})
    s.email("ada@example.com", "open")
    s.social("@ada", "like")
    roots = {root_of(s, i) for i in ("anon:anon-1", "user:u1", "email:ada@example.com",
                                     "handle:twitter:ada")}
    assert len(roots) == 1
    c = s.contact("u1")
    assert c.count("page") == 1 and c.count("email:open") == 1 and c.count("social:like") == 1
    assert [t.name for t in c.timers] == ["cart-reminder"]  # learned before identification
    assert {"user:u1", "anon:anon-1", "email:ada@example.com", "handle:twitter:ada"} <= set(c.identifiers)
    [reminder] = [a for a in s.advance(minutes=31) if a.rule_id == "cart-abandoned"]
    assert reminder.contact_id == c.contact_id


def test_email_events_before_the_identify_are_merged_into_the_user() -> None:
    s = Scenario()
    s.email("bob@example.com", "open")
    s.email("bob@example.com", "click")
    email_only = root_of(s, "email:bob@example.com")
    assert email_only != contact_id_for("user:u2")
    s.identify("u2", email="bob@example.com")
    assert root_of(s, "email:bob@example.com") == root_of(s, "user:u2")
    assert s.contact("u2").count("email") == 2


def test_an_unverified_event_never_merges_two_known_contacts() -> None:
    s = Scenario()
    s.identify("u1", email="one@example.com", social_handles={"twitter": "@one"})
    s.identify("u2", email="two@example.com")
    # A social event claims @one's handle belongs to two@example.com: an unverified claim.
    s.social("@one", "mention", email="two@example.com")
    assert root_of(s, "user:u1") != root_of(s, "user:u2")
    # Not even an authenticated one: two userIds are two people. The email stays with u2.
    s.identify("u1", email="two@example.com")
    assert root_of(s, "user:u1") != root_of(s, "user:u2")
    assert root_of(s, "email:two@example.com") == root_of(s, "user:u2")
    [refusal] = s.contact("u2").refused
    assert (refusal.identifier, refusal.kind) == ("email:two@example.com", "email")
    assert s.runtime.pipeline.metrics.merges_refused == {"email": 1}


def test_merged_away_contacts_redirect_and_contact_ids_are_deterministic() -> None:
    s = Scenario()
    s.page("anon-9", "/")
    s.segment("identify", "u9", anonymousId="anon-9")
    survivor = contact_id_for("user:u9")  # the device's contact moves into the user's
    assert root_of(s, "user:u9") == survivor == root_of(s, "anon:anon-9")
    s.runtime.flush()
    moved = state_codec.decode(s.runtime.contacts[contact_id_for("anon:anon-9")])
    assert moved.merged_into == survivor and moved.tallies == {}
    assert s.runtime.identity.get("anon:anon-9") == survivor.encode()  # re-pointed at once


def test_identifiers_are_ordered_strongest_first() -> None:
    ev = decode("clickstream", b'{"messageId":"m","type":"identify","userId":"u","anonymousId":"a",'
                b'"timestamp":"2026-01-01T00:00:00Z","traits":{"email":"e@x.io",'
                b'"social_handles":{"twitter":"@T"}}}')
    assert identifiers(ev) == ("user:u", "email:e@x.io", "handle:twitter:t", "anon:a")
