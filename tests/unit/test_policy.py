"""Each contact-policy behaviour, in scenarios through the real core, plus its invariants."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.consent import permits
from engine.core.policy import ChannelPolicy, Policy, RulePolicy
from engine.sdk import Context, Proposal, on, rule
from engine.testing import Scenario

# 2026-09-21 12:00 UTC: midday in London, so quiet hours only bite where a test says so.
NOON = datetime(2026, 9, 21, 12, 0, tzinfo=UTC).timestamp()
NO_QUIET = ("00:00", "00:00")


@rule("promo", triggers=[on("track", "Product Viewed")])
def promo(ctx: Context) -> Proposal:
    return Proposal(action=f"promo-{ctx.event.properties.get('n', 0)}",
                    channels=("email", "sms", "push"), priority=50)


@rule("receipt", triggers=[on("track", "Order Completed")])
def receipt(ctx: Context) -> Proposal:
    return Proposal(action="receipt", channels=("email",), priority=10,
                    action_class="transactional", ttl=3 * 3600)


@rule("security", triggers=[on("track", "Password Reset")])
def security(ctx: Context) -> Proposal:
    return Proposal(action="reset-link", channels=("email", "sms"), priority=1,
                    action_class="mandatory")


@rule("upsell", triggers=[on("track", "Password Reset")])
def upsell(ctx: Context) -> Proposal:
    return Proposal(action="upsell", channels=("email",), priority=99, value=10)


def policy(**overrides: object) -> Policy:
    channels = {ch: ChannelPolicy(consent_default=ch in ("email", "web", "crm", "print"))
                for ch in ("email", "sms", "push", "web", "crm", "print")}
    base: dict[str, object] = {"global_daily_cap": None, "global_weekly_cap": None,
                               "channels": channels}
    return Policy(**{**base, **overrides})  # type: ignore[arg-type]


def scenario(p: Policy, *rules: object, users: tuple[str, ...] = ("u1",)) -> Scenario:
    """The rules under the policy, for contacts with an address on every channel (the
    reachability tests are in test_consent.py); whether they consent is up to each test."""
    s = Scenario(list(rules or (promo,)), policy=p, start=NOON)  # type: ignore[arg-type]
    for user in users:
        s.segment("identify", user, traits={"email": f"{user}@x.io", "phone": "+33600000000"},
                  context={"device": {"token": f"push-{user}"}})
    return s


def view(s: Scenario, n: int = 0, user: str = "u1") -> list[str]:
    return [f"{a.channel}:{a.action}" for a in s.track(user, "Product Viewed", properties={"n": n})]


def reasons(s: Scenario, user: str = "u1") -> list[str]:
    return [d.reason for d in s.contact(user).decisions if d.outcome != "chosen"]


def test_consent_defaults_traits_segment_categories_and_the_preference_centre() -> None:
    s = scenario(policy())
    s.identify("u1", consent={"email": False})
    assert view(s) == []  # email refused, sms and push need an opt-in
    assert reasons(s) == ["no_consent"]
    s.advance(minutes=1)  # a newer answer: at the same instant the refusal would stand
    s.segment("track", "u1", event="Page Viewed",
              context={"consent": {"categoryPreferences": {"Advertising": True}}})
    assert view(s, 1) == ["email:promo-1"]  # Advertising covers email, sms, push, print
    s.track("u1", "Preferences Updated", properties={"consent": {"email": False, "sms": False},
                                                     "preferred_channel": "push"})
    assert view(s, 2) == ["push:promo-2"]  # the preferred channel comes first when allowed


def test_an_unsubscribe_revokes_before_anything_else_is_decided() -> None:
    s = scenario(policy())
    s.identify("u1", email="a@b.c")
    assert view(s) == ["email:promo-0"]
    s.email("a@b.c", "unsubscribe")
    assert view(s, 1) == []


def test_hard_suppressions_override_even_consent_and_mandatory_class() -> None:
    s = scenario(policy(), security, promo)
    s.identify("u1", email="a@b.c", consent={"email": True, "sms": False})
    s.email("a@b.c", "bounce", type="bounce", reason="550 no such user")
    assert view(s) == []
    assert reasons(s)[-1] == "hard_suppressed"
    # mandatory skips marketing consent (sms was refused), never a hard bounce: sms it is
    assert [a.channel for a in s.track("u1", "Password Reset")] == ["sms"]
    assert s.contact("u1").suppressed == {"email": "hard bounce"}


def test_a_soft_block_is_not_a_hard_bounce() -> None:
    s = scenario(policy())
    s.identify("u1", email="a@b.c")
    s.email("a@b.c", "bounce", type="blocked", reason="mailbox full")
    assert view(s) == ["email:promo-0"]


def test_daily_weekly_and_global_caps() -> None:
    p = policy(channels={"email": ChannelPolicy(daily_cap=2, weekly_cap=3, quiet_hours=NO_QUIET)},
               global_daily_cap=None)
    s = scenario(p)
    s.identify("u1", consent={"email": True})
    assert [view(s, i) for i in range(3)] == [["email:promo-0"], ["email:promo-1"], []]
    assert reasons(s)[-1] == "capped"
    s.advance(hours=25)
    assert view(s, 3) == ["email:promo-3"]
    s.advance(hours=25)
    assert view(s, 4) == []  # weekly cap of 3 reached
    s2 = scenario(policy(global_daily_cap=1,
                         channels={"email": ChannelPolicy(quiet_hours=NO_QUIET),
                                   "push": ChannelPolicy(quiet_hours=NO_QUIET)}))
    s2.identify("u1", consent={"email": True, "push": True})
    assert view(s2) == ["email:promo-0"]
    assert view(s2, 1) == []  # the global cap applies across channels


def test_transactional_actions_skip_caps_quiet_hours_and_marketing_consent() -> None:
    p = policy(channels={"email": ChannelPolicy(daily_cap=0, quiet_hours=("00:00", "23:59"))})
    s = scenario(p, receipt, promo)
    s.identify("u1", consent={"email": True})
    assert view(s) == []
    [r] = s.track("u1", "Order Completed")
    assert (r.channel, r.action_class, r.recipient) == ("email", "transactional", "u1@x.io")
    s.identify("u1", consent={"email": False})
    assert [a.action for a in s.track("u1", "Order Completed")] == ["receipt"]


def test_mandatory_wins_arbitration_over_a_higher_score() -> None:
    s = scenario(policy(), security, upsell)
    [a] = s.track("u1", "Password Reset")
    assert a.action == "reset-link"
    assert ("upsell", "outranked") in [(d.rule_id, d.reason) for d in s.contact("u1").decisions]


def test_cool_down_per_action() -> None:
    @rule("cooled", triggers=[on("page")])
    def cooled(ctx: Context) -> Proposal:
        return Proposal(action="same-offer", channels=("web",), cooldown=3 * 86_400)

    s = scenario(policy(), cooled)
    assert len(s.page("u1", "/")) == 1
    s.advance(days=2)
    assert s.page("u1", "/") == []
    assert reasons(s)[-1] == "cooling_down"
    s.advance(days=2)
    assert len(s.page("u1", "/")) == 1


def test_quiet_hours_defer_to_the_contacts_morning_in_their_own_time_zone() -> None:
    p = policy(channels={"email": ChannelPolicy(quiet_hours=("21:00", "08:00"))})
    s = scenario(p, users=("tokyo", "london"))
    # 12:00 UTC is 21:00 in Tokyo (UTC+9): inside quiet hours there, not in London.
    s.segment("identify", "tokyo", context={"timezone": "Asia/Tokyo"},
              traits={"consent": {"email": True}})
    s.segment("identify", "london", context={"timezone": "Europe/London"},
              traits={"consent": {"email": True}})
    assert view(s, user="london") == ["email:promo-0"]
    assert view(s, user="tokyo") == []
    assert reasons(s, "tokyo") == ["quiet_hours_deferred"]
    assert s.advance(hours=10) == []  # 07:00 in Tokyo: still quiet
    [a] = s.advance(hours=1, minutes=1)  # 08:01 in Tokyo
    assert a.action == "promo-0" and a.decided_at.startswith("2026-09-21T23:00")
    assert a.trigger_event_id == s.contact("tokyo").decisions[0].trigger_event_id


def test_a_deferred_action_that_would_expire_first_is_dropped() -> None:
    @rule("flash", triggers=[on("page")])
    def flash(ctx: Context) -> Proposal:
        return Proposal(action="flash-sale", channels=("email",), ttl=3600)

    p = policy(channels={"email": ChannelPolicy(quiet_hours=("21:00", "08:00"))})
    s = scenario(p, flash, users=("tokyo",))
    s.segment("identify", "tokyo", context={"timezone": "Asia/Tokyo"},
              traits={"consent": {"email": True}})
    assert s.page("tokyo", "/") == []
    assert reasons(s, "tokyo") == ["expired"]
    assert s.advance(hours=12) == []


def test_repeated_negative_outcomes_suppress_an_action_for_a_while() -> None:
    @rule("news", triggers=[on("page")])
    def news(ctx: Context) -> Proposal:
        return Proposal(action="newsletter", channels=("email",))

    s = scenario(policy(negative_outcomes=2, suppress_days=10), news)
    s.identify("u1", email="a@b.c")
    for _ in range(2):
        [a] = s.page("u1", "/")
        s.email("a@b.c", "dropped", reason="Invalid", kairos_action_id=a.action_id)
    assert s.page("u1", "/") == []
    assert reasons(s)[-1] == "suppressed"
    s.advance(days=11)
    assert len(s.page("u1", "/")) == 1


def test_holdouts_are_deterministic_recorded_and_flagged_not_delivered() -> None:
    p = policy(holdout=0.3, rules={"promo": RulePolicy(holdout=0.2)})
    flags = {}
    for i in range(300):
        s = scenario(p, users=(f"u{i}",))
        [a] = s.track(f"u{i}", "Product Viewed", properties={"n": 0})
        flags[a.contact_id] = a.control_group
        again = scenario(p, users=(f"u{i}",))
        assert again.track(f"u{i}", "Product Viewed", properties={"n": 0})[0].control_group == a.control_group
    share = sum(flags.values()) / len(flags)
    assert 0.35 < share < 0.53  # 1 - 0.7 * 0.8 = 0.44 expected
    s = scenario(policy(holdout=0.999))
    [a] = s.track("u1", "Product Viewed", properties={"n": 0})
    assert a.control_group
    c = s.contact("u1")
    assert c.decisions[-1].outcome == "held_out" and c.history[-1].control
    assert c.outcomes == {}  # not sent: no propensity evidence either


def test_propensity_learns_from_outcomes_and_moves_the_ranking() -> None:
    @rule("a-rule", triggers=[on("page")])
    def a_rule(ctx: Context) -> Proposal:
        return Proposal(action="offer-a", channels=("email",), priority=50)

    @rule("b-rule", triggers=[on("page")])
    def b_rule(ctx: Context) -> Proposal:
        return Proposal(action="offer-b", channels=("email",), priority=45)

    s = scenario(policy(channels={"email": ChannelPolicy(quiet_hours=NO_QUIET)}), a_rule, b_rule)
    s.identify("u1", email="a@b.c", consent={"email": True})
    winners = []
    # Prior Beta(1, 4): a scores 50 x 0.2 = 10 and wins; unopened it drops to 50 x 1/6 = 8.3,
    # below b's 45 x 0.2 = 9; b is clicked each time and keeps winning (45 x 2/6 = 15, ...).
    for _ in range(4):
        s.advance(hours=1)
        [a] = s.page("u1", "/")
        winners.append(a.action)
        if a.action == "offer-b":
            s.email("a@b.c", "click", kairos_action_id=a.action_id)
    assert winners == ["offer-a", "offer-b", "offer-b", "offer-b"]
    o = s.contact("u1").outcomes
    assert (o["offer-a|email"].sent, o["offer-a|email"].positive) == (1, 0)
    assert (o["offer-b|email"].sent, o["offer-b|email"].positive) == (3, 3)


def test_a_policy_file_overrides_field_by_field(tmp_path: Path) -> None:
    f = tmp_path / "policy.toml"
    f.write_text('holdout = 0.1\n[channels.email]\ndaily_cap = 1\n[rules.promo]\nlever = 2.0\n')
    p = Policy.load(f)
    assert p.holdout == 0.1 and p.rule("promo").lever == 2.0
    assert p.channel("email").daily_cap == 1 and p.channel("email").weekly_cap == 5
    assert p.channel("sms").consent_default is False  # untouched channels keep their defaults
    f.write_text("[channels.fax]\ndaily_cap = 1\n")
    with pytest.raises(ValueError, match=r"unknown channel 'fax' - at `\$\.channels\.fax`"):
        Policy.load(f)
    f.write_text("holdout = 1.5\n")
    with pytest.raises(ValueError, match=r"at `\$\.holdout`"):
        Policy.load(f)


# --- invariants over generated streams and policies ---------------------------------------

STEPS = st.lists(st.tuples(
    st.sampled_from(["view", "consent-on", "consent-off", "unsub", "wait"]),
    st.integers(0, 2), st.sampled_from(["email", "sms", "push"]),
), min_size=1, max_size=40)
POLICIES = st.builds(
    lambda cap, week, quiet, start: policy(channels={
        ch: ChannelPolicy(consent_default=ch == "email", daily_cap=cap, weekly_cap=week,
                          quiet_hours=(f"{start:02d}:00", f"{(start + 9) % 24:02d}:00") if quiet else NO_QUIET)
        for ch in ("email", "sms", "push")}),
    st.integers(0, 3), st.integers(0, 5), st.booleans(), st.integers(0, 23),
)


def play(p: Policy, steps: list[tuple[str, int, str]]) -> tuple[Scenario, list[tuple[float, str, str]]]:
    """Run the steps; check consent at the moment of every action against a model of answers."""
    users = {f"u{i}" for i in range(3)}
    s = scenario(p, users=tuple(sorted(users)))
    owner = {}
    zones = {"u0": "UTC", "u1": "Asia/Tokyo", "u2": "America/New_York"}
    for user in sorted(users):
        s.segment("identify", user, context={"timezone": zones[user]})
        owner[s.contact(user).contact_id] = user
    answers: dict[tuple[str, str], bool] = {}
    log: list[tuple[float, str, str]] = []
    for kind, who, channel in steps:
        user = f"u{who}"
        if kind == "view":
            out = s.track(user, "Product Viewed", properties={"n": len(log)})
        elif kind in ("consent-on", "consent-off"):
            out = s.identify(user, consent={channel: kind == "consent-on"})
            answers[(user, channel)] = kind == "consent-on"
        elif kind == "unsub":
            out = s.email(f"{user}@x.io", "unsubscribe")
            answers[(user, "email")] = False
        else:
            out = s.advance(hours=7)
        for a in out:
            if not a.control_group:
                who_ = owner[a.contact_id]
                allowed = answers.get((who_, a.channel), p.channel(a.channel).consent_default)
                assert allowed, f"{a.action} on {a.channel} to {who_} without consent"
            log.append((s.now, a.contact_id, a.channel))
    return s, log


@settings(max_examples=40, deadline=None)
@given(POLICIES, STEPS)
def test_never_a_channel_without_consent_never_over_a_cap_nothing_in_quiet_hours(
    p: Policy, steps: list[tuple[str, int, str]],
) -> None:
    s, _ = play(p, steps)  # consent is checked as the actions come
    for user in ("u0", "u1", "u2"):
        contact = s.contact(user)
        sent = [h for h in contact.history if not h.control]
        for h in sent:
            cp = p.channel(h.channel)
            same_day = [x for x in sent if x.channel == h.channel and 0 <= h.at - x.at < 86_400]
            same_week = [x for x in sent if x.channel == h.channel and 0 <= h.at - x.at < 7 * 86_400]
            assert cp.daily_cap is None or len(same_day) <= cp.daily_cap
            assert cp.weekly_cap is None or len(same_week) <= cp.weekly_cap
            assert not in_quiet_hours(contact.timezone, cp.quiet_hours, h.at)


def in_quiet_hours(tz: str | None, hours: tuple[str, str] | None, at: float) -> bool:
    from engine.core.arbitration import _quiet_until

    return _quiet_until(tz, hours, at) is not None


@settings(max_examples=20, deadline=None)
@given(POLICIES, STEPS)
def test_same_inputs_give_the_same_decisions(p: Policy, steps: list[tuple[str, int, str]]) -> None:
    assert play(p, steps)[1] == play(p, steps)[1]


def test_permits_uses_channel_defaults() -> None:
    from engine.model.state import ContactState

    assert permits(ContactState(contact_id="c"), "sms", None, policy()) is False
    assert permits(ContactState(contact_id="c"), "email", None, policy()) is True
