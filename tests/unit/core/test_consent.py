"""Consent per channel and group, with time, and reachability: examples through the real core."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from engine.core.decide import decide
from engine.core.policy import Policy, RulePolicy
from engine.model import state as state_codec
from engine.model.events import Event
from engine.model.messages import Deliver
from engine.model.state import Address, Consent, ContactState
from engine.ops.explain import render
from engine.sdk import Context, Proposal, on, rule
from engine.sdk.ruleset import RuleSet
from engine.testing import UNLIMITED_POLICY, Scenario

NOON = datetime(2026, 9, 21, 12, 0, tzinfo=UTC).timestamp()
OPEN = Policy.load(UNLIMITED_POLICY)


@rule("news", triggers=[on("page")])
def news(ctx: Context) -> Proposal:
    return Proposal(action="newsletter", channels=("email",), group="newsletter")


@rule("offer", triggers=[on("track", "Product Viewed")])
def offer(ctx: Context) -> Proposal:
    return Proposal(action="offer", channels=("email", "push", "web"))


@rule("receipt", triggers=[on("track", "Order Completed")])
def receipt(ctx: Context) -> Proposal:
    return Proposal(action="receipt", channels=("email", "sms"), action_class="transactional")


def scenario(*rules: object, policy: Policy = OPEN) -> Scenario:
    return Scenario(list(rules), policy=policy, start=NOON)  # type: ignore[arg-type]


def reasons(s: Scenario, user: str = "u1") -> list[str]:
    return [d.reason for d in s.contact(user).decisions if d.outcome != "chosen"]


def test_marketing_needs_prior_consent_and_silence_is_not_consent() -> None:
    s = scenario(news)
    s.identify("u1", email="a@b.c")
    assert s.page("u1", "/") == []
    assert reasons(s) == ["no_consent"]
    s.advance(minutes=1)
    s.identify("u1", consent={"email": True})
    [a] = s.page("u1", "/")
    assert (a.channel, a.recipient) == ("email", "a@b.c")


def test_an_email_beyond_the_identity_limit_never_becomes_the_address() -> None:
    """Its unsubscribe would reach another contact: the contact keeps mailing the address
    whose feedback comes back to it."""
    s = scenario(offer)
    s.identify("u1", email="u1-0@x.io", consent={"email": True})
    for n in range(1, 6):  # the default limit holds five emails: the sixth is refused
        s.advance(minutes=1)
        s.identify("u1", email=f"u1-{n}@x.io")
    assert s.contact("user:u1").addresses["email"].value == "u1-4@x.io"
    s.advance(minutes=1)
    s.email("u1-4@x.io", "unsubscribe")
    s.advance(minutes=1)
    assert all(a.channel != "email" for a in s.track("u1", "Product Viewed"))
    assert s.contact("user:u1").consent["email"].granted is False


def test_a_stale_identify_never_grants_again() -> None:
    s = scenario(news)
    s.identify("u1", email="a@b.c", consent={"email": True})
    s.advance(hours=1)
    s.email("a@b.c", "unsubscribe")
    late = {"messageId": "old-1", "type": "identify", "userId": "u1",
            "timestamp": "2026-09-21T11:00:00Z", "traits": {"consent": {"email": True}}}
    s.send(orjson.dumps(late))  # an hour older than the unsubscribe
    assert s.page("u1", "/") == []
    c = s.contact("u1").consent["email"]
    assert (c.granted, c.source) == (False, "email:unsubscribe")


def test_a_group_unsubscribe_silences_that_group_only_and_a_resubscribe_restores_it() -> None:
    s = scenario(news, offer, policy=Policy(email_groups={"newsletter": 42}))
    s.identify("u1", email="a@b.c", consent={"email": True})
    s.advance(minutes=1)
    s.email("a@b.c", "group_unsubscribe", asm_group_id=42)
    assert s.page("u1", "/") == []
    assert reasons(s)[-1] == "no_consent"
    [a] = s.track("u1", "Product Viewed")  # no group: other email still goes
    assert a.channel == "email"
    s.advance(minutes=1)
    s.email("a@b.c", "group_resubscribe", asm_group_id=42)
    assert [a.action for a in s.page("u1", "/")] == ["newsletter"]
    assert s.contact("u1").consent["email/newsletter"].source == "email:group_resubscribe"


def test_a_global_unsubscribe_blocks_every_group_until_a_newer_grant() -> None:
    s = scenario(news)
    s.identify("u1", email="a@b.c", consent={"email/newsletter": True})
    assert len(s.page("u1", "/")) == 1  # a group's own opt-in is consent for that group
    s.advance(minutes=1)
    s.email("a@b.c", "unsubscribe")
    s.advance(minutes=1)
    s.email("a@b.c", "group_resubscribe", asm_group_id=7)
    assert s.page("u1", "/") == []
    s.advance(minutes=1)
    s.identify("u1", consent={"email": True})
    assert len(s.page("u1", "/")) == 1


def test_the_rule_section_names_the_group_of_a_rule_that_does_not() -> None:
    p = Policy(rules={"offer": RulePolicy(group="offers")})
    s = scenario(offer, policy=p)
    s.identify("u1", email="a@b.c", consent={"email": True, "email/offers": False})
    [a] = s.track("u1", "Product Viewed")
    assert a.channel == "web"  # email refused for the offers group, web is the fallback


def test_soft_opt_in_lets_a_customer_hear_about_similar_products_unless_they_object(
    tmp_path: Path,
) -> None:
    @rule("related", triggers=[on("track", "Order Completed")])
    def related(ctx: Context) -> Proposal:
        return Proposal(action="related", channels=("email",))

    s = scenario(related)
    s.identify("u1", email="a@b.c")
    [a] = s.track("u1", "Order Completed")
    assert a.recipient == "a@b.c"
    s.advance(minutes=1)
    s.identify("u1", consent={"email": False})
    assert s.track("u1", "Order Completed") == []
    f = tmp_path / "policy.toml"
    f.write_text("[channels.email]\nsoft_opt_in = false\n")
    s2 = scenario(related, policy=Policy.load(f))
    s2.identify("u1", email="a@b.c")
    assert s2.track("u1", "Order Completed") == []


def test_an_unreachable_channel_falls_back_and_none_reachable_is_recorded() -> None:
    s = scenario(offer)
    s.identify("u1", consent={"email": True, "push": True})  # no address, no device
    [a] = s.track("u1", "Product Viewed")
    assert (a.channel, a.recipient) == ("web", None)
    only_email = scenario(news)
    only_email.identify("u1", consent={"email": True})
    assert only_email.page("u1", "/") == []
    assert reasons(only_email) == ["unreachable"]
    assert only_email.runtime.pipeline.metrics.suppressions[("news", "", "unreachable")] == 1
    assert "news -> newsletter: unreachable" in render(only_email.contact("u1"))


def test_the_push_token_comes_from_the_device_and_is_the_recipient() -> None:
    s = scenario(offer)
    s.segment("identify", "u1", traits={"consent": {"push": True}},
              context={"device": {"token": "fcm-123"}})
    [a] = s.track("u1", "Product Viewed")
    assert (a.channel, a.recipient) == ("push", "fcm-123")
    assert s.contact("u1").addresses == {"push": Address("fcm-123", NOON)}


def test_transactional_skips_consent_and_holdouts_never_a_hard_bounce() -> None:
    p = Policy(holdout=0.999)
    s = scenario(receipt, policy=p)
    s.identify("u1", email="a@b.c", phone="+33600000001", consent={"email": False})
    s.email("a@b.c", "spamreport")  # blocks marketing only
    [a] = s.track("u1", "Order Completed")
    assert (a.channel, a.recipient, a.control_group) == ("email", "a@b.c", False)
    s.email("a@b.c", "bounce", reason="550 no such user")
    [b] = s.track("u1", "Order Completed")
    assert (b.channel, b.recipient) == ("sms", "+33600000001")
    assert s.contact("u1").suppressed == {"email": "hard bounce", "email/marketing": "spam report"}


def test_a_late_old_identify_does_not_bring_back_an_old_address() -> None:
    s = scenario(receipt)
    s.identify("u1", email="new@b.c")
    stale = {"messageId": "old-2", "type": "identify", "userId": "u1",
             "timestamp": "2026-09-21T11:00:00Z", "traits": {"email": "old@b.c", "phone": None}}
    s.send(orjson.dumps(stale))
    s.identify("u1", phone="+33600000002")
    [a] = s.track("u1", "Order Completed")
    assert a.recipient == "new@b.c"
    assert s.contact("u1").addresses["email"] == Address("new@b.c", NOON)


def test_a_new_address_lifts_a_hard_bounce_not_a_spam_report() -> None:
    s = scenario(receipt, news)
    s.identify("u1", email="old@b.c", consent={"email": True})
    s.email("old@b.c", "bounce", reason="550")
    assert s.track("u1", "Order Completed") == []
    assert reasons(s)[-1] == "hard_suppressed"
    s.identify("u1", email="new@b.c")
    [a] = s.track("u1", "Order Completed")
    assert a.recipient == "new@b.c"
    s.email("new@b.c", "spamreport")
    assert s.page("u1", "/") == []
    assert reasons(s)[-1] == "hard_suppressed"


def test_consent_categories_may_name_a_group_and_unknown_channels_are_refused(
    tmp_path: Path,
) -> None:
    p = Policy(consent_categories={"Newsletter": ("email/newsletter",)})
    s = scenario(news, policy=p)
    s.segment("identify", "u1", traits={"email": "a@b.c"},
              context={"consent": {"categoryPreferences": {"Newsletter": True}}})
    assert len(s.page("u1", "/")) == 1
    f = tmp_path / "p.toml"
    f.write_text('[consent_categories]\nAds = ["fax/offers"]\n')
    with pytest.raises(ValueError, match=r"unknown channel 'fax' - at `\$\.consent_categories\.Ads`"):
        Policy.load(f)


def test_a_proposal_group_is_a_plain_name() -> None:
    with pytest.raises(ValueError, match=r"proposal 'x': a group is a non-empty name without '/'"):
        Proposal(action="x", channels=("email",), group="a/b")


def test_an_old_policy_file_still_loads_and_can_keep_email_opt_out(tmp_path: Path) -> None:
    f = tmp_path / "old.toml"
    f.write_text('[channels.email]\nconsent_default = true\ndaily_cap = 1\n'
                 '[channels.sms]\nconsent_default = false\n[rules.promo]\naction_class = "transactional"\n')
    p = Policy.load(f)
    assert p.channel("email").consent_default and p.channel("email").soft_opt_in
    assert p.channel("email").daily_cap == 1 and not p.channel("push").consent_default


def test_a_state_from_before_addresses_gets_them_from_what_it_knew() -> None:
    old = ContactState(contact_id="c1", identifiers=("user:u1", "email:ada@example.com"),
                       traits={"phone": "+33600000001"},
                       consent={"email": Consent(True, NOON - 60, "traits")})
    old_bytes = state_codec.encode(old)
    assert b"addresses" not in old_bytes and state_codec.decode(old_bytes).schema == 1
    d = decide(state_codec.decode(old_bytes), "c1", Deliver(Event(
        event_id="e1", source="clickstream", kind="page", name="/", time=NOON, user_id="u1"),
        via="user:u1"), NOON, RuleSet([news]), OPEN)
    assert d.state is not None and d.state.schema == 2
    assert d.state.addresses == {"email": Address("ada@example.com", 0.0),
                                 "sms": Address("+33600000001", 0.0)}
    assert [a.recipient for a in d.actions] == ["ada@example.com"]
    assert state_codec.decode(state_codec.encode(d.state)).schema == 2


def test_a_merge_keeps_the_answer_the_consent_model_keeps_a_withdrawal_at_the_same_instant() -> None:
    from engine.core.merge import merge
    from engine.model.state import Consent, ContactState

    into = ContactState(contact_id="c1", consent={"email": Consent(True, 100.0, "traits")})
    other = ContactState(contact_id="c2", consent={"email": Consent(False, 100.0, "email:x"),
                                                   "sms": Consent(True, 50.0, "traits")})
    merged = merge(into, other)
    assert merged.consent["email"].granted is False  # same instant: the withdrawal stands
    assert merged.consent["sms"].granted is True
