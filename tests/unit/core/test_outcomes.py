"""Outcomes that close the loop: opens and clicks credited to the action that caused them, and
an action nothing positive followed within the policy's window judged ignored."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.core.policy import ChannelPolicy, Policy
from engine.sdk import Context, Proposal, on, on_timer, rule
from engine.testing import Scenario

NOON = datetime(2026, 9, 21, 12, 0, tzinfo=UTC).timestamp()
NO_QUIET = ("00:00", "00:00")


@rule("promo", triggers=[on("track", "Product Viewed")])
def promo(ctx: Context) -> Proposal:
    return Proposal(action=f"promo-{ctx.event.properties.get('n', 0)}", channels=("email",))


@rule("onsite", triggers=[on("track", "Page Seen")])
def onsite(ctx: Context) -> Proposal:
    return Proposal(action="banner", channels=("web",))


@rule("later", triggers=[on("track", "Wishlist Saved"), on_timer("check")])
def later(ctx: Context) -> Proposal | None:
    if ctx.timer is None:
        ctx.schedule("check", after=8 * 86_400)
    return None


def scenario(**overrides: object) -> Scenario:
    channels = {ch: ChannelPolicy(consent_default=True, quiet_hours=NO_QUIET)
                for ch in ("email", "sms", "push")}
    p = Policy(global_daily_cap=None, global_weekly_cap=None, channels=channels,
               **overrides)  # type: ignore[arg-type]
    s = Scenario([promo, onsite, later], policy=p, start=NOON)
    s.identify("u1", email="a@b.c")
    return s


def test_an_email_click_is_credited_to_the_action_its_custom_argument_names() -> None:
    s = scenario()
    [first] = s.track("u1", "Product Viewed", properties={"n": 1})
    [second] = s.track("u1", "Product Viewed", properties={"n": 2})
    s.email("a@b.c", "click", url="https://shop/x", kairos_action_id=first.action_id)
    st = s.contact("u1")
    assert (st.outcomes["promo-1|email"].positive, st.outcomes["promo-2|email"].positive) == (1, 0)
    assert {h.action_id: h.fate for h in st.history} == {first.action_id: "engaged",
                                                         second.action_id: ""}
    s.email("a@b.c", "open", kairos_action_id="a-not-ours")  # names no action of theirs
    assert s.contact("u1").outcomes["promo-2|email"].positive == 0


def test_a_tracked_link_click_reported_as_an_outcome_is_credited_too() -> None:
    s = scenario()
    [sent] = s.track("u1", "Product Viewed")
    s.outcome(sent, "clicked")
    assert s.contact("u1").outcomes["promo-0|email"].positive == 1


def test_an_action_ignored_past_the_window_counts_negative_until_it_is_suppressed() -> None:
    s = scenario(negative_outcomes=2, ignored_after_days=7)
    assert len(s.track("u1", "Product Viewed")) == 1
    s.advance(days=6)
    s.track("u1", "Page Seen")  # not yet: six days of silence is not ignoring it
    assert s.contact("u1").outcomes["promo-0|email"].negative_streak == 0
    s.advance(days=2)
    assert len(s.track("u1", "Product Viewed")) == 1  # judged ignored now: one in a row
    st = s.contact("u1")
    assert st.outcomes["promo-0|email"].negative_streak == 1
    assert [h.fate for h in st.history if h.channel == "email"] == ["ignored", ""]
    s.advance(days=8)
    assert s.track("u1", "Product Viewed") == []  # the second ignored one: suppressed
    assert s.contact("u1").decisions[-1].reason == "suppressed"


def test_a_click_within_the_window_keeps_the_action_from_being_ignored() -> None:
    s = scenario(negative_outcomes=1)
    [sent] = s.track("u1", "Product Viewed")
    s.advance(days=3)
    s.email("a@b.c", "open", kairos_action_id=sent.action_id)
    s.advance(days=10)
    assert len(s.track("u1", "Product Viewed")) == 1
    assert s.contact("u1").history[0].fate == "engaged"


def test_channels_that_report_no_engagement_are_never_judged_ignored() -> None:
    s = scenario(negative_outcomes=1)
    assert len(s.track("u1", "Page Seen")) == 1
    s.advance(days=30)
    assert len(s.track("u1", "Page Seen")) == 1
    st = s.contact("u1")
    assert [h.fate for h in st.history] == ["", ""] and st.outcomes["banner|web"].negative_streak == 0


def test_zero_days_never_judges_an_action_ignored() -> None:
    s = scenario(negative_outcomes=1, ignored_after_days=0)
    s.track("u1", "Product Viewed")
    s.advance(days=30)
    assert len(s.track("u1", "Product Viewed")) == 1
    assert s.contact("u1").ignored_due == 0.0


def test_a_timer_judges_too_without_any_new_event() -> None:
    s = scenario()
    s.track("u1", "Wishlist Saved")
    [sent] = s.track("u1", "Product Viewed")
    s.advance(days=9)  # only the timer wakes the contact
    st = s.contact("u1")
    assert [h.fate for h in st.history if h.action_id == sent.action_id] == ["ignored"]
    assert st.outcomes["promo-0|email"].negative_streak == 1 and st.ignored_due == 0.0
