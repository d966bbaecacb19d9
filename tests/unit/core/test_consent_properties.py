"""Consent and reachability invariants over random event sequences, against a plain model.

Answers are given at random event times and arrive out of order; addresses come and go;
bounces, spam reports and unsubscribe groups happen. After every step, every action is checked
against what the model says was true at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.policy import Policy
from engine.model.actions import Action
from engine.model.events import iso
from engine.sdk import Context, Proposal, on, rule
from engine.testing import UNLIMITED_POLICY, Scenario

NOON = datetime(2026, 9, 21, 12, 0, tzinfo=UTC).timestamp()
GROUPS = {"newsletter": 1, "offers": 2}
KEYS = ("email", "email/newsletter", "email/offers", "sms", "push", "print")
ADDRESSED = ("email", "sms", "push", "print")
BASE = Policy.load(UNLIMITED_POLICY)
EMAIL_LIMIT = BASE.identity.limits["email"]
POLICY = Policy(
    global_daily_cap=None, global_weekly_cap=None, channels=BASE.channels,
    holdout=0.3, email_groups=GROUPS,
)


@rule("promo", triggers=[on("track", "Promo")])
def promo(ctx: Context) -> Proposal:
    p = ctx.event.properties
    return Proposal(action=f"promo-{p['n']}", channels=tuple(p["channels"]), group=p["group"])


@rule("notice", triggers=[on("track", "Notice")])
def notice(ctx: Context) -> Proposal:
    p = ctx.event.properties
    return Proposal(action=f"notice-{p['n']}", channels=tuple(p["channels"]),
                    action_class=p["class"])


@dataclass
class Person:
    """What the model knows of one contact: answers by key, addresses, objections."""

    answers: dict[str, tuple[float, bool]] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    addressed_at: dict[str, float] = field(default_factory=dict)
    bounced: bool = False
    spam: bool = False
    customer: bool = False
    emails: int = 0
    linked: list[str] = field(default_factory=list)  # emails among its identifiers (limit 5)

    def answer(self, key: str, at: float, granted: bool) -> None:
        held = self.answers.get(key)
        if held is None or (at, not granted) > (held[0], not held[1]):
            self.answers[key] = (at, granted)

    def give(self, channel: str, value: str | None, at: float) -> None:
        """The newest address by event time is the current one; a mailbox change lifts a
        hard bounce (it was the old mailbox's)."""
        if self.addressed_at.get(channel, at) > at:
            return
        before = self.addresses.get(channel)
        self.addressed_at[channel] = at
        if value is None:
            self.addresses.pop(channel, None)
        else:
            self.addresses[channel] = value
        if channel == "email" and value != before:
            self.bounced = False

    def permits(self, channel: str, group: str | None) -> bool:
        whole = self.answers.get(channel)
        part = self.answers.get(f"{channel}/{group}") if group else None
        if whole is not None and not whole[1]:
            return False
        if part is not None:
            return part[1]
        if whole is not None:
            return True
        cp = POLICY.channel(channel)
        return cp.consent_default or (cp.soft_opt_in and self.customer)


STEP = st.tuples(
    st.sampled_from(["consent", "consent", "unsub", "group-unsub", "group-resub", "spam",
                     "bounce", "new-email", "old-email", "phone", "no-phone", "token", "buy",
                     "promo", "promo", "promo", "notice", "wait"]),
    st.integers(0, 1),  # who
    st.sampled_from(KEYS),
    st.integers(0, 35),  # minutes back in event time (steps are 10 apart): out of order
    st.booleans(),
    st.lists(st.sampled_from(["email", "sms", "push", "print", "web"]), min_size=1,
             max_size=3, unique=True),
    st.sampled_from([None, "newsletter", "offers"]),
    st.sampled_from(["transactional", "mandatory"]),
)


def play(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    s = Scenario([promo, notice], policy=POLICY, start=NOON)
    people = {f"u{i}": Person() for i in range(2)}
    owner: dict[str, str] = {}
    for i, (user, me) in enumerate(people.items()):
        me.give("email", f"{user}-0@x.io", s.now)
        me.linked.append(f"{user}-0@x.io")
        me.give("sms", f"+3360000000{i}", s.now)
        grants = {"email": True, "sms": True, "push": True}
        s.identify(user, email=me.addresses["email"], phone=me.addresses["sms"], consent=grants)
        for key in grants:
            me.answer(key, s.now, True)
        owner[s.contact(user).contact_id] = user
    for n, (kind, who, key, back, granted, channels, group, cls) in enumerate(steps):
        user = f"u{who}"
        me = people[user]
        mail = me.addresses.get("email")
        s.advance(minutes=10)
        at = s.now - back * 60
        out: list[Action] = []
        if kind == "consent":
            out = s.segment("identify", user, timestamp=iso(at),
                            traits={"consent": {key: granted}})
            me.answer(key, at, granted)
        elif kind in ("unsub", "group-unsub", "group-resub", "spam", "bounce") and mail:
            name = {"unsub": "unsubscribe", "group-unsub": "group_unsubscribe",
                    "group-resub": "group_resubscribe", "spam": "spamreport",
                    "bounce": "bounce"}[kind]
            gid = GROUPS[group] if group else None
            extra = {"asm_group_id": gid} if gid else {}
            out = s.email(mail, name, timestamp=at, **extra)
            if kind == "unsub" or (kind == "group-unsub" and not group):
                me.answer("email", at, False)
            elif kind in ("group-unsub", "group-resub") and group:
                me.answer(f"email/{group}", at, kind == "group-resub")
            me.spam = me.spam or kind == "spam"
            me.bounced = me.bounced or kind == "bounce"
        elif kind in ("new-email", "old-email"):  # an old identify may arrive late
            me.emails += 1
            given = f"{user}-{me.emails}@x.io"
            when = s.now if kind == "new-email" else at
            if len(me.linked) < EMAIL_LIMIT:  # beyond it the identity policy refuses the email,
                me.linked.append(given)  # and an address that is not the contact's is none
                me.give("email", given, when)
            out = s.segment("identify", user, timestamp=iso(when), traits={"email": given})
        elif kind in ("phone", "no-phone"):
            phone = f"+3360000000{who}{n}" if kind == "phone" else None
            me.give("sms", phone, at)
            out = s.segment("identify", user, timestamp=iso(at), traits={"phone": phone})
        elif kind == "token":
            me.give("push", f"tok-{user}-{n}", s.now)
            out = s.segment("identify", user, context={"device": {"token": me.addresses["push"]}})
        elif kind == "buy":
            me.customer = True
            out = s.track(user, "Order Completed")
        elif kind in ("promo", "notice"):
            props = {"n": n, "channels": channels, "group": group, "class": cls}
            out = s.track(user, "Promo" if kind == "promo" else "Notice", properties=props)
        else:
            out = s.advance(hours=5)
        for a in out:
            check(a, people[owner[a.contact_id]], group if a.rule_id == "promo" else None)
        for name, person in people.items():  # (d) the state keeps the newest answer given
            held = s.contact(name).consent
            for k, (_t, g) in person.answers.items():
                assert held[k].granted == g, f"{k}: a stale answer won"


def check(a: Action, me: Person, group: str | None) -> None:
    marketing = a.action_class == "marketing"
    if marketing:  # (a) consent for its channel and group as of the decision
        assert me.permits(a.channel, group), f"{a.action} on {a.channel} without consent"
        assert not (a.channel == "email" and me.spam), "marketing email after a spam report"
    else:  # (e) holdouts never hold back transactional or mandatory messages
        assert not a.control_group, f"{a.action_class} {a.action} held out"
    assert not (a.channel == "email" and me.bounced), "email to a hard-bounced address"
    if a.channel in ADDRESSED:  # (b) and (c): the contact's own current address
        assert a.recipient is not None, f"{a.channel} action without a recipient"
        assert a.recipient == me.addresses.get(a.channel), "not the contact's own address"
    else:
        assert a.recipient is None


@settings(max_examples=150, deadline=None)
@given(st.lists(STEP, min_size=5, max_size=40))
def test_every_action_had_consent_an_address_of_its_own_and_no_holdout_unless_marketing(
    steps: list[tuple],  # type: ignore[type-arg]
) -> None:
    play(steps)
