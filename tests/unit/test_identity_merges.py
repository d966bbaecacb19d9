"""One contact per person: linking, merging, and never merging on an unverified claim."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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
    # The same link from an authenticated identify does merge them.
    s.identify("u1", email="two@example.com")
    assert root_of(s, "user:u1") == root_of(s, "user:u2")


def test_merged_away_contacts_redirect_and_contact_ids_are_deterministic() -> None:
    s = Scenario()
    s.page("anon-9", "/")
    s.segment("identify", "u9", anonymousId="anon-9")
    ids = {contact_id_for("anon:anon-9"), contact_id_for("user:u9")}
    survivor = min(ids)
    assert root_of(s, "user:u9") == survivor
    s.runtime.flush()
    moved = state_codec.decode(s.runtime.contacts[max(ids)])
    assert moved.merged_into == survivor and moved.tallies == {}


def test_identifiers_are_ordered_strongest_first() -> None:
    ev = decode("clickstream", b'{"messageId":"m","type":"identify","userId":"u","anonymousId":"a",'
                b'"timestamp":"2026-01-01T00:00:00Z","traits":{"email":"e@x.io",'
                b'"social_handles":{"twitter":"@T"}}}')
    assert identifiers(ev) == ("user:u", "email:e@x.io", "handle:twitter:t", "anon:a")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.booleans()), min_size=1,
                max_size=25))
def test_merges_never_cycle_and_linked_identifiers_share_a_root(
    links: list[tuple[int, int, bool]],
) -> None:
    """Identifies link users to emails in any order; unverified emails arrive in between."""
    s = Scenario([])
    linked: list[tuple[str, str]] = []
    for user, mail, also_email_event in links:
        if also_email_event:
            s.email(f"e{mail}@x.io", "open")
        s.identify(f"u{user}", email=f"e{mail}@x.io")
        linked.append((f"user:u{user}", f"email:e{mail}@x.io"))
    # Following redirects always terminates (merges go from larger to smaller contact ids).
    s.runtime.flush()
    for key in list(s.runtime.contacts):
        hops, cur = 0, key
        while (st_ := state_codec.decode(s.runtime.contacts[cur])).merged_into:
            assert st_.merged_into < cur
            cur, hops = st_.merged_into, hops + 1
            assert hops < 50
    # Everything linked by authenticated identifies ends up on one root per connected group.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in linked:
        parent[find(a)] = find(b)
    groups: dict[str, set[str]] = {}
    for a, b in linked:
        groups.setdefault(find(a), set()).update((root_of(s, a), root_of(s, b)))
    assert all(len(roots) == 1 for roots in groups.values())
