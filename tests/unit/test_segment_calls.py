"""The whole Segment spec: screen, group and alias beside track, page and identify; traits from
`context.traits`; the device type, campaign and locale a call's context carries."""

from __future__ import annotations

from pathlib import Path

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.merge import merge
from engine.core.policy import Policy
from engine.model import state as state_codec
from engine.model.events import decode
from engine.model.segment import Campaign
from engine.model.state import Account, ContactState, Touch
from engine.ops.explain import render
from engine.sdk import Context, Proposal, on, rule
from engine.testing import UNLIMITED_POLICY, Scenario


def call(**fields: object) -> bytes:
    base = {"messageId": "m1", "userId": "u1", "timestamp": "2026-11-02T09:15:00Z"}
    return orjson.dumps({**base, **fields})


# --- decoding ----------------------------------------------------------------------------------


def test_screen_is_a_page_view_in_an_app() -> None:
    ev = decode("clickstream", call(type="screen", name="Home", properties={"tab": "deals"}))
    assert (ev.kind, ev.name, ev.properties) == ("screen", "Home", {"tab": "deals"})


def test_group_carries_the_account_and_its_traits_not_the_persons() -> None:
    ev = decode("clickstream", call(type="group", groupId="acme", traits={"plan": "enterprise"},
                                    context={"traits": {"email": "ada@acme.io"}}))
    assert (ev.kind, ev.group_id, ev.traits) == ("group", "acme", {"plan": "enterprise"})
    assert ev.email is None


def test_alias_is_authenticated_and_names_the_previous_id() -> None:
    ev = decode("clickstream", call(type="alias", previousId="anon-7"))
    assert (ev.kind, ev.previous_id, ev.user_id, ev.authenticated) == ("alias", "anon-7", "u1",
                                                                       True)


def test_identify_reads_context_traits_and_the_top_level_wins_a_clash() -> None:
    ev = decode("clickstream", call(
        type="identify", traits={"email": "top@x.io"},
        context={"traits": {"email": "ctx@x.io", "phone": "+3360000"}}))
    assert ev.traits == {"email": "top@x.io", "phone": "+3360000"}
    assert ev.email == "top@x.io"
    only = decode("clickstream", call(type="identify", context={"traits": {"email": "Ctx@X.io"}}))
    assert only.email == "ctx@x.io"


def test_device_campaign_and_locale_are_kept_on_the_event() -> None:
    ev = decode("clickstream", call(type="track", event="Opened", context={
        "device": {"token": "tok-1", "type": "ios"}, "locale": "fr-FR",
        "campaign": {"name": "spring", "source": "news", "medium": "email", "utm_id": "x"}}))
    assert (ev.device_token, ev.device_type, ev.locale) == ("tok-1", "ios", "fr-FR")
    assert ev.campaign == Campaign(name="spring", source="news", medium="email")


# --- identify through context.traits ----------------------------------------------------------


@rule("welcome", triggers=[on("identify")])
def welcome(ctx: Context) -> Proposal:
    return Proposal(action="welcome", channels=("email",))


def identified(where: str) -> Scenario:
    s = Scenario([welcome], policy=Policy.load(UNLIMITED_POLICY))
    traits = {"email": "Ada@Example.com", "phone": "+33600000000",
              "consent": {"email": True, "sms": False}}
    s.segment("identify", "u1", **({"traits": traits} if where == "top" else
                                   {"context": {"traits": traits}}))
    return s


def test_context_traits_give_the_address_reachability_and_consent_top_level_traits_do() -> None:
    top, ctx = identified("top"), identified("context")
    a, b = top.contact("u1"), ctx.contact("u1")
    assert b.addresses == a.addresses and b.addresses["email"].value == "ada@example.com"
    assert b.addresses["sms"].value == "+33600000000"
    assert {k: c.granted for k, c in b.consent.items()} == {"email": True, "sms": False}
    assert b.identifiers == a.identifiers and "email:ada@example.com" in b.identifiers
    assert b.traits == a.traits
    [action] = ctx.actions
    assert (action.channel, action.recipient) == ("email", "ada@example.com")


# --- alias -------------------------------------------------------------------------------------


def test_alias_brings_an_anonymous_history_into_the_user() -> None:
    s = Scenario([])
    s.page("anon-1", "/pricing")
    s.page("anon-1", "/pricing")
    s.segment("alias", "u1", previousId="anon-1")
    u1 = s.contact("u1")
    assert u1.count("page:/pricing") == 2 and u1.count("alias") == 1
    assert "anon:anon-1" in u1.identifiers
    assert s.contact("anon:anon-1").contact_id == u1.contact_id


def test_alias_from_another_users_id_never_merges_two_users() -> None:
    s = Scenario([])
    s.identify("u1", email="ada@x.io")
    s.track("u1", "Order Completed")
    s.segment("alias", "u2", previousId="u1")
    u1, u2 = s.contact("u1"), s.contact("u2")
    assert u1.contact_id != u2.contact_id
    assert [i for i in u1.identifiers if i.startswith("user:")] == ["user:u1"]
    assert [i for i in u2.identifiers if i.startswith("user:")] == ["user:u2"]
    assert u1.count("track:Order Completed") == 1 and u2.count("track") == 0


def test_alias_of_a_device_another_user_logged_in_on_moves_the_device_only() -> None:
    s = Scenario([])
    s.track("u1", "Product Viewed", anonymousId="anon-9")
    s.segment("alias", "u2", previousId="anon-9")
    u1, u2 = s.contact("u1"), s.contact("u2")
    assert u1.contact_id != u2.contact_id and u1.count("track:Product Viewed") == 1
    assert s.contact("anon:anon-9").contact_id == u2.contact_id  # the newest login
    assert any(r.identifier == "anon:anon-9" for r in u1.refused + u2.refused)


# --- group -------------------------------------------------------------------------------------


def test_group_attaches_the_account_counts_and_leaves_consent_and_addresses_alone() -> None:
    s = Scenario([])
    s.identify("u1", email="ada@x.io", consent={"email": True})
    before = s.contact("u1")
    s.segment("group", "u1", groupId="acme",
              traits={"name": "Acme", "plan": "pro", "email": "billing@acme.io",
                      "phone": "+1555", "consent": {"email": False}})
    s.advance(seconds=10)
    s.segment("group", "u1", groupId="acme", traits={"plan": "enterprise", "seats": 40})
    after = s.contact("u1")
    assert after.account is not None and after.account.group_id == "acme"
    assert after.account.traits == {"name": "Acme", "plan": "enterprise", "seats": 40,
                                    "email": "billing@acme.io", "phone": "+1555",
                                    "consent": {"email": False}}
    assert after.count("group") == 2
    assert after.addresses == before.addresses and after.consent == before.consent
    assert after.traits == before.traits


def test_the_newest_account_wins_and_an_older_call_changes_nothing() -> None:
    s = Scenario([])
    s.segment("group", "u1", groupId="acme", traits={"plan": "pro"})
    s.advance(seconds=60)
    s.segment("group", "u1", groupId="globex", traits={"plan": "free"})
    late = {"messageId": "late", "type": "group", "userId": "u1", "groupId": "acme",
            "timestamp": "2026-01-01T00:00:00Z", "traits": {"plan": "gold"}}
    s.send(orjson.dumps(late))
    account = s.contact("u1").account
    assert account is not None and (account.group_id, account.traits) == ("globex",
                                                                          {"plan": "free"})


@rule("b2b-python", triggers=[on("group")])
def b2b(ctx: Context) -> Proposal | None:
    account = ctx.state.account
    if account is not None and account.traits.get("plan") == "enterprise":
        return Proposal(action="account-manager", channels=("crm",))
    return None


B2B_TOML = '''
[[rule]]
id = "b2b-cel"
triggers = ["group", "screen:Billing"]
when = """has(state.account.traits.plan) && state.account.traits.plan == 'enterprise'
  && state.locale == 'fr-FR'"""
  [[rule.propose]]
  action = "billing-help"
  channels = ["crm"]
'''


def test_a_python_rule_reads_the_account() -> None:
    s = Scenario([b2b], policy=Policy.load(UNLIMITED_POLICY))
    s.segment("group", "u1", groupId="acme", traits={"plan": "pro"})
    assert s.actions == []
    s.segment("group", "u1", groupId="acme", traits={"plan": "enterprise"})
    assert [a.action for a in s.actions] == ["account-manager"]


def test_a_declarative_rule_reads_the_account_and_locale(tmp_path: Path) -> None:
    (tmp_path / "b2b.toml").write_text(B2B_TOML)
    s = Scenario(tmp_path, policy=Policy.load(UNLIMITED_POLICY))
    s.segment("screen", "u1", name="Billing", context={"locale": "fr-FR"})
    assert s.actions == [] and s.contact("u1").decisions == ()  # no account yet: false
    assert [a.action for a in s.segment("group", "u1", groupId="acme",
                                        traits={"plan": "enterprise"})] == ["billing-help"]
    s.advance(days=2)
    assert [a.action for a in s.segment("screen", "u1", name="Billing")] == ["billing-help"]


# --- device, campaign, locale on the state -----------------------------------------------------


def test_device_type_campaign_and_locale_reach_the_state_and_explain() -> None:
    s = Scenario([])
    spring = {"name": "spring", "source": "news", "medium": "email"}
    s.page("u1", "/", context={"campaign": spring, "locale": "fr-FR"})
    s.advance(hours=1)
    s.segment("screen", "u1", name="Home", context={
        "device": {"token": "tok-1", "type": "android"}, "locale": "de-DE",
        "campaign": {"name": "summer", "source": "ads"}})
    st = s.contact("u1")
    assert st.addresses["push"].value == "tok-1" and st.addresses["push"].device == "android"
    assert st.locale == "de-DE"
    assert st.campaign is not None and st.campaign.campaign.name == "summer"
    assert st.first_campaign is not None and st.first_campaign.campaign.name == "spring"
    assert st.first_campaign.at < st.campaign.at
    text = render(st)
    assert "push tok-1 (android)" in text
    assert "locale de-DE, campaign summer/ads/-/-/-" in text
    assert "first campaign spring/news/email/-/-" in text


def test_old_records_decode_without_the_new_fields() -> None:
    old = msgspec.msgpack.encode({"contact_id": "c1", "schema": 2,
                                  "addresses": {"push": ["tok", 1.0], "email": ["a@b.c", 2.0]}})
    st = state_codec.decode(old)
    assert st.addresses["push"].device is None and st.addresses["email"].value == "a@b.c"
    assert (st.account, st.locale, st.campaign, st.first_campaign) == (None, None, None, None)
    assert state_codec.decode(state_codec.encode(st)) == st


@pytest.mark.parametrize("swap", [False, True])
def test_a_merge_keeps_the_newest_account_and_campaign_and_the_first_touch(swap: bool) -> None:
    old, new = Campaign(name="old"), Campaign(name="new")
    a = ContactState(contact_id="a", account=Account(group_id="acme", at=5.0), locale="fr",
                     campaign=Touch(new, 9.0), first_campaign=Touch(new, 9.0))
    b = ContactState(contact_id="b", account=Account(group_id="globex", at=7.0),
                     campaign=Touch(old, 1.0), first_campaign=Touch(old, 1.0), locale="de")
    into, other = (b, a) if swap else (a, b)
    merged = merge(into, other)
    assert merged.account is not None and merged.account.group_id == "globex"
    assert merged.campaign == Touch(new, 9.0) and merged.first_campaign == Touch(old, 1.0)
    assert merged.locale == into.locale


# --- alias never makes two users one, whatever the order ---------------------------------------

# (call, acting userId index, id index, whether that id is a userId or a device's)
steps = st.lists(st.tuples(st.sampled_from(("alias", "login", "page")), st.integers(0, 3),
                           st.integers(0, 3), st.booleans()), min_size=1, max_size=16)


@settings(max_examples=80, deadline=None)
@given(steps)
def test_alias_never_yields_a_contact_with_two_user_ids(
    plan: list[tuple[str, int, int, bool]],
) -> None:
    s = Scenario([])
    for kind, user, other, is_user in plan:
        earlier = f"u{other}" if is_user else f"anon-{other}"
        if kind == "alias":
            s.segment("alias", f"u{user}", previousId=earlier)
        elif kind == "login":
            s.track(f"u{user}", "Signed In", anonymousId=f"anon-{other}")
        else:
            s.page(f"anon-{other}", "/")
        s.advance(seconds=1)
    s.runtime.flush()
    for raw in s.runtime.contacts.values():
        held = state_codec.decode(raw)
        assert len([i for i in held.identifiers if i.startswith("user:")]) <= 1
    for user in {u for _, u, _, _ in plan}:
        if s.runtime.identity.get(f"user:u{user}") is not None:
            assert s.contact(f"u{user}").identifiers.count(f"user:u{user}") == 1
