"""Fallback: an action that fails for good goes to the next channel its rule allowed, under the
policy as it is then, once per channel; or the contact's decisions say why not."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.core.fallback import NO_FALLBACK, failed_for_good, offer_fallback
from engine.core.policy import ChannelPolicy, Policy
from engine.model.actions import Action
from engine.model.events import Event
from engine.ops.explain import render
from engine.sdk import Context, Proposal, on, rule
from engine.sdk.ruleset import RuleSet
from engine.testing import Scenario

NOON = datetime(2026, 9, 21, 12, 0, tzinfo=UTC).timestamp()
NO_QUIET = ("00:00", "00:00")


@rule("winback", triggers=[on("track", "Cart Abandoned")])
def winback(ctx: Context) -> Proposal:
    return Proposal(action="come-back", channels=("sms", "push", "web"), cooldown=86_400,
                    payload={"sku": "k-1"})


@rule("sms-only", triggers=[on("track", "Code Requested")])
def sms_only(ctx: Context) -> Proposal:
    return Proposal(action="code", channels=("sms",))


def policy(**channels: ChannelPolicy) -> Policy:
    every = {ch: ChannelPolicy(consent_default=True, quiet_hours=NO_QUIET)
             for ch in ("email", "sms", "push", "web", "crm", "print")}
    return Policy(global_daily_cap=None, global_weekly_cap=None, channels={**every, **channels})


def scenario(p: Policy | None = None) -> Scenario:
    s = Scenario([winback, sms_only], policy=p or policy(), start=NOON)
    s.segment("identify", "u1", traits={"phone": "+33600000000"},
              context={"device": {"token": "push-u1"}})
    return s


def failed(s: Scenario, a: Action) -> list[Action]:
    return s.outcome(a, "failed", permanent=True, reason="permanent failure: HTTP 400: invalid")


def test_a_permanent_sms_failure_is_offered_on_push_with_its_own_id_and_reason() -> None:
    s = scenario()
    [sms] = s.track("u1", "Cart Abandoned")
    assert sms.channel == "sms"
    [push] = failed(s, sms)
    assert (push.channel, push.action, push.rule_id) == ("push", "come-back", "winback")
    assert push.action_id != sms.action_id
    assert push.reason.startswith("fallback from sms: winback")
    assert push.recipient == "push-u1" and push.payload == {"sku": "k-1"}
    assert push.expires_at == sms.expires_at  # the original's lifetime, not a new one
    # the failed action counts for no cool-down: the rule's one-day cool-down did not stop it
    history = {h.action_id: h.fate for h in s.contact("u1").history}
    assert history == {sms.action_id: "failed", push.action_id: ""}


def test_the_fallback_id_is_deterministic() -> None:
    ids = []
    for _ in range(2):
        s = scenario()
        [sms] = s.track("u1", "Cart Abandoned")
        ids.append(failed(s, sms)[0].action_id)
    assert ids[0] == ids[1]


def test_each_channel_is_tried_once_and_a_repeated_report_offers_nothing_more() -> None:
    s = scenario()
    [sms] = s.track("u1", "Cart Abandoned")
    [push] = failed(s, sms)
    assert failed(s, sms) == [push]  # the same report redelivered: the same action again
    again = s.outcome(sms, "failed", permanent=True, outcome_id="provider-report")
    assert again == []  # another report of the same failure offers nothing more
    [web] = failed(s, push)
    assert web.channel == "web" and web.reason.startswith("fallback from push")
    assert failed(s, web) == []
    last = s.contact("u1").decisions[-1]
    assert (last.outcome, last.reason, last.fallback_from) == ("suppressed", NO_FALLBACK, "web")
    sent = {a.action_id: a.channel for a in s.actions_for("winback")}
    assert sorted(sent.values()) == ["push", "sms", "web"]


def test_no_other_channel_allowed_is_recorded_and_explained() -> None:
    s = scenario()
    [sms] = s.track("u1", "Code Requested")
    assert failed(s, sms) == []
    st = s.contact("u1")
    last = st.decisions[-1]
    assert (last.rule_id, last.reason, last.action_id) == ("sms-only", NO_FALLBACK, sms.action_id)
    assert f"suppressed sms-only -> code (fallback from sms): {NO_FALLBACK}" in render(st)


def test_consent_forbidding_the_next_channels_is_the_reason_recorded() -> None:
    s = scenario(policy(push=ChannelPolicy(consent_default=False, quiet_hours=NO_QUIET),
                        web=ChannelPolicy(consent_default=False)))
    [sms] = s.track("u1", "Cart Abandoned")
    assert failed(s, sms) == []
    last = s.contact("u1").decisions[-1]
    assert (last.outcome, last.reason, last.fallback_from) == ("suppressed", "no_consent", "sms")


def test_a_transient_failure_offers_no_fallback() -> None:
    s = scenario()
    [sms] = s.track("u1", "Cart Abandoned")
    assert s.outcome(sms, "failed", reason="gave up after 5 attempts") == []
    assert s.contact("u1").decisions[-1].outcome == "chosen"


def test_a_hard_bounce_of_the_email_goes_to_the_next_channel_and_blocks_email() -> None:
    @rule("mailer", triggers=[on("track", "Cart Abandoned")])
    def mailer(ctx: Context) -> Proposal:
        return Proposal(action="reminder", channels=("email", "sms"))

    s = Scenario([mailer], policy=policy(), start=NOON)
    s.identify("u1", email="a@b.c", phone="+33600000000")
    [email] = s.track("u1", "Cart Abandoned")
    [sms] = s.email("a@b.c", "bounce", type="bounce", reason="550 no such user",
                    kairos_action_id=email.action_id)
    assert (sms.channel, sms.recipient) == ("sms", "+33600000000")
    assert s.contact("u1").suppressed == {"email": "hard bounce"}
    s.advance(days=2)
    assert [a.channel for a in s.track("u1", "Cart Abandoned")] == ["sms"]


def test_quiet_hours_defer_a_fallback_which_keeps_its_id() -> None:
    p = policy(push=ChannelPolicy(consent_default=True, quiet_hours=("11:00", "13:00")))
    s = scenario(p)
    [sms] = s.track("u1", "Cart Abandoned")
    assert failed(s, sms) == []
    assert s.contact("u1").decisions[-1].reason == "quiet_hours_deferred"
    [push] = s.advance(hours=2)
    assert push.channel == "push" and push.reason.startswith("fallback from sms")
    s2 = scenario()
    [sms2] = s2.track("u1", "Cart Abandoned")
    assert push.action_id == failed(s2, sms2)[0].action_id


def test_a_rule_removed_since_offers_nothing_and_says_so() -> None:
    s = scenario()
    [sms] = s.track("u1", "Cart Abandoned")
    st = s.contact("u1")
    failure = Event(event_id="f1", source="outcome", kind="outcome", name="failed", time=NOON,
                    properties={"action_id": sms.action_id, "permanent": True})
    sent = failed_for_good(st, failure)
    assert sent is not None and sent.action_id == sms.action_id
    result = offer_fallback(st, sent, failure, NOON, RuleSet([]), policy())
    assert result.actions == [] and [r.reason for r in result.records] == ["rule_inactive"]
    assert st.fallbacks == ()  # taken: a channel is offered once at most
