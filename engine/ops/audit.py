"""`kairos audit`: what an action file did, checked against the history it was decided from.

Everything is recomputed from the raw events, not from the engine's state, so the engine never
vouches for itself: who is who by userId (an anonymous device is the person last logged in on
it, else the first who logs in on it later; an email address or a social handle is whoever gave
it), which addresses each person gave, and when consent was withdrawn. Three violations:

- `no_recipient`: an action on a channel that needs an address (email, sms, push, print) has none;
- `other_persons_address`: the recipient was given by another person, never by the person the
  action is for (the person of its trigger event; for a timer's action, the people of every
  traceable action of the same contact; not checked when the contact has none);
- `after_withdrawal`: a marketing action decided at or after a withdrawal covering its channel
  and not undone since: a SendGrid `unsubscribe` or `spamreport` of the address (a spam report
  is never undone; an unsubscribe is, by a later opt-in of a person who gave that address), or
  a consent of the person answered false in identify traits or `context.consent` (of each
  person, when a timer's action stands for several). Group unsubscribes cover only their
  group's messages, which actions do not name: they are not counted.

Control-group actions are never sent and are not audited.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.core.policy import DEFAULT_POLICY
from engine.model import actions as action_codec
from engine.model.actions import Action
from engine.model.events import epoch
from engine.ops.history import read_lines

__all__ = ["AuditReport", "Finding", "History", "audit", "run"]

ADDRESSED = ("email", "sms", "push", "print")
ADDRESS_TRAITS = ("email", "phone", "mobile", "push_token", "device_token")
KINDS = ("no_recipient", "other_persons_address", "after_withdrawal")
Party = tuple[str, str]  # ("user", userId) or ("address", address)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    action: Action
    detail: str


@dataclass(slots=True)
class AuditReport:
    events: int
    actions: int
    findings: list[Finding] = field(default_factory=list)

    def counts(self) -> collections.Counter[str]:
        return collections.Counter(f.kind for f in self.findings)

    def render(self, examples: int = 3) -> str:
        counts = self.counts()
        lines = [f"history events:   {self.events:,}", f"actions audited:  {self.actions:,}"]
        for kind in KINDS:
            lines.append(f"{kind + ':':<27}{counts[kind]:>7,}")
            per = collections.Counter((f.action.rule_id, f.action.channel)
                                      for f in self.findings if f.kind == kind)
            lines += [f"    {rule:<34} {channel:<6} {n:>6,}"
                      for (rule, channel), n in sorted(per.items())]
            lines += [f"    e.g. {f.action.action_id} {f.action.contact_id}: {f.detail}"
                      for f in [f for f in self.findings if f.kind == kind][:examples]]
        return "\n".join(lines)


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return epoch(str(value))


class History:
    """Who is who, who gave which address, and consent over time, from the raw events."""

    def __init__(self) -> None:
        self.owners: dict[str, set[str]] = collections.defaultdict(set)  # address -> userIds
        self.given: dict[str, set[str]] = collections.defaultdict(set)  # userId -> addresses
        self.handles: dict[str, set[str]] = collections.defaultdict(set)  # network:handle -> ids
        self.logins: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
        # (party, channel) -> [(time, granted, permanent)] in time order
        self.consent: dict[tuple[Party, str], list[tuple[float, bool, bool]]] = (
            collections.defaultdict(list))
        self.events: dict[str, tuple[float, dict[str, Any]]] = {}

    @classmethod
    def read(cls, path: str | Path) -> History:
        h = cls()
        for _, raw in read_lines(path):
            try:
                obj = orjson.loads(raw)
                t = _epoch(obj["timestamp"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # what the engine dead-letters decides nothing
            if isinstance(obj, dict):
                h._learn(obj, t)
        for logins in h.logins.values():
            logins.sort()
        return h

    def _learn(self, obj: dict[str, Any], t: float) -> None:
        event_id = obj.get("messageId") or obj.get("sg_event_id") or obj.get("event_id")
        if isinstance(event_id, str):
            self.events[event_id] = (t, obj)
        user, anon = obj.get("userId"), obj.get("anonymousId")
        if "messageId" in obj and isinstance(user, str):
            if isinstance(anon, str):
                self.logins[anon].append((t, user))
            self._identify(user, obj, t)
        elif "sg_event_id" in obj and obj.get("event") in ("unsubscribe", "spamreport"):
            address = str(obj.get("email", "")).strip().lower()
            self.consent[(("address", address), "email")].append(
                (t, False, obj["event"] == "spamreport"))

    def _identify(self, user: str, obj: dict[str, Any], t: float) -> None:
        traits = obj.get("traits") if obj.get("type") == "identify" else None
        traits = traits if isinstance(traits, dict) else {}
        given = [str(traits[k]).strip().lower() for k in ADDRESS_TRAITS if traits.get(k)]
        for address in given:
            self.owners[address].add(user)
            self.given[user].add(address)
        for network, handle in (traits.get("social_handles") or {}).items():
            self.handles[f"{network}:{str(handle).lower()}"].add(user)
        answers: dict[str, bool] = {}
        context = obj.get("context") if isinstance(obj.get("context"), dict) else {}
        categories = ((context or {}).get("consent") or {}).get("categoryPreferences") or {}
        for category, granted in categories.items():
            for channel in DEFAULT_POLICY.consent_categories.get(category, ()):
                answers[channel] = bool(granted)
        for channel, granted in (traits.get("consent") or {}).items():
            answers[channel] = bool(granted)
        for channel, granted in answers.items():
            self.consent[(("user", user), channel)].append((t, granted, False))
            if channel == "email" and granted:  # the person's new opt-in re-opens their mailboxes
                for address in self.given[user]:
                    self.consent[(("address", address), "email")].append((t, True, False))

    def persons(self, event_id: str) -> set[str] | None:
        """The userIds an event is about (empty: nobody known); None: not in the history."""
        found = self.events.get(event_id)
        while found is None and ":" in event_id:  # derived triggers: "<cause>:<kind>:<value>"
            event_id = event_id.rsplit(":", 1)[0]
            found = self.events.get(event_id)
        if found is None:
            return None
        t, obj = found
        if isinstance(obj.get("userId"), str):
            return {obj["userId"]}
        if isinstance(obj.get("anonymousId"), str):
            logins = self.logins.get(obj["anonymousId"], [])
            i = bisect.bisect_right(logins, (t, "\uffff"))
            return {logins[i - 1][1]} if i else ({logins[0][1]} if logins else set())
        if isinstance(obj.get("user_id"), str):
            return {obj["user_id"]}
        if obj.get("email"):
            return set(self.owners.get(str(obj["email"]).strip().lower(), ()))
        return set(self.handles.get(f"{obj.get('network')}:{str(obj.get('handle')).lower()}", ()))

    def withdrawn(self, people: set[str], address: str | None, channel: str, at: float
                  ) -> str | None:
        """The withdrawal covering `channel` at `at`: of the address, or of every one of
        `people` (a contact whose trigger is not traceable may stand for several)."""
        found = [self._withdrawal(("address", address), channel, at)] if address else []
        per_person = [self._withdrawal(("user", p), channel, at) for p in sorted(people)]
        if per_person and all(per_person):
            found += per_person
        return next((why for why in found if why), None)

    def _withdrawal(self, party: Party, channel: str, at: float) -> str | None:
        answers = [a for a in self.consent.get((party, channel), ()) if a[0] <= at]
        if any(permanent for _, _, permanent in answers):
            return f"{party[1]} reported spam"
        if answers and not answers[-1][1]:
            return f"{party[1]} withdrew {channel} consent at {answers[-1][0]:.0f}"
        return None


def audit(history: History, actions: Iterable[Action]) -> AuditReport:
    sent = [a for a in actions if not a.control_group]
    by_contact: dict[str, set[str]] = {}
    for a in sent:
        found = history.persons(a.trigger_event_id)
        if found is not None:
            by_contact.setdefault(a.contact_id, set()).update(found)
    report = AuditReport(events=len(history.events), actions=len(sent))
    for a in sent:
        persons = history.persons(a.trigger_event_id)
        known = by_contact.get(a.contact_id) if persons is None else persons
        people = known or set()
        if a.channel in ADDRESSED and not a.recipient:
            report.findings.append(Finding("no_recipient", a, f"{a.channel} with no address"))
        elif a.recipient and known is not None:  # for whom, when nothing traceable says, unknown
            owners = history.owners.get(a.recipient.strip().lower(), set())
            if owners and not owners & people:
                report.findings.append(Finding(
                    "other_persons_address", a,
                    f"{a.recipient} belongs to {sorted(owners)}, not {sorted(people)}"))
        if a.action_class != "marketing":
            continue
        address = a.recipient.strip().lower() if a.recipient else None
        why = history.withdrawn(people, address, a.channel, _epoch(a.decided_at))
        if why:
            report.findings.append(Finding("after_withdrawal", a, why))
    return report


def run(events: str, actions: str) -> int:
    """Print the report; 1 when anything was found."""
    report = audit(History.read(events),
                   (action_codec.decode(raw) for _, raw in read_lines(actions)))
    print(report.render())
    return 1 if report.findings else 0

