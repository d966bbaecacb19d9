"""Per-contact state: the single view of a customer that rules read.

Stored as msgspec msgpack in RocksDB (both runtimes). Every collection is bounded so a very
active contact cannot grow without limit; the bounds are constants here, in one place.
Schema changes add fields with defaults at the end so old records still decode.

Sequences are tuples of structs that opt out of the cyclic garbage collector (`gc=False`), and
the event ids seen are packed bytes: a cached state then holds no object the collector must
visit, so a worker caching a hundred thousand contacts does not pause for it.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable
from typing import Any

import msgspec

from engine.model.actions import Action
from engine.model.events import Event
from engine.model.explained import DecisionRecord, Refusal
from engine.model.outreach import MAX_FALLBACKS, Contacted, Fallback, Outcomes
from engine.model.segment import Campaign, Location
from engine.model.values import Observed

MAX_IDENTIFIERS = 32
MAX_TRAITS = 100
MAX_TALLIES = 256
MAX_RECENT = 50
# Event ids remembered to decide each once: more than the records a worker can have consumed
# without committing (one batch, engine/runtime/kafka/commits.py), so even a contact that is every
# event of a batch re-decides nothing after a crash. Kept as 64-bit digests: 8 bytes each.
MAX_SEEN = 2_500
DIGEST = 8
MAX_PURCHASES = 20
MAX_PURCHASE_PRODUCTS = 20  # product ids kept per order (the first ones of its `products`)
MAX_HISTORY = 100
MAX_TIMERS = 32
MAX_DECISIONS = 20
MAX_OUTBOX = 16
MAX_SCORES = 32
MAX_OUTCOMES = 64
MAX_REFUSALS = 20
WINDOW_TIMES = 10

STAGES = ("awareness", "consideration", "decision", "post-purchase")
LIFECYCLES = ("prospect", "lead", "customer", "repeat", "lapsed")


class Consent(msgspec.Struct, gc=False, array_like=True, frozen=True):
    """One answer for a channel or a subscription group: the newest by event time `at` wins."""

    granted: bool
    at: float
    source: str
    event_id: str | None = None  # the event that gave the answer (None in older states)


class Address(msgspec.Struct, gc=False, array_like=True, frozen=True):
    """The contact's address on one channel; the newest by event time `at` is the current one."""

    value: str
    at: float
    device: str | None = None  # push: the device type the token is for (ios, android, …)


class Account(msgspec.Struct, gc=False, omit_defaults=True):
    """The account (a Segment `group` call's `groupId`) the contact belongs to, for B2B rules:
    the newest by event time; its traits are bounded like the contact's."""

    group_id: str
    at: float
    traits: dict[str, Any] = {}


class Touch(msgspec.Struct, gc=False, array_like=True, frozen=True):
    """A campaign (`context.campaign`, UTM) that brought the contact, and when."""

    campaign: Campaign
    at: float


def event_digest(event_id: str) -> bytes:
    """A stable 64-bit digest of an event id (the same in every process, unlike `hash`)."""
    return hashlib.blake2b(event_id.encode(), digest_size=DIGEST).digest()


def seen_digests(seen: bytes) -> list[bytes]:
    return [seen[i:i + DIGEST] for i in range(0, len(seen), DIGEST)]


class Tally(msgspec.Struct, gc=False, array_like=True):
    """First and last time, how often, and the latest times something was seen.

    `times` keeps the last `WINDOW_TIMES` occurrences, so "N times within T" is answered
    exactly for N up to that bound without scanning any stored events.
    """

    first: float
    last: float
    count: int = 1
    times: tuple[float, ...] = ()

    def within(self, seconds: float, now: float) -> int:
        """Occurrences in (now - seconds, now]; saturates at `WINDOW_TIMES`."""
        times = self.times  # in time order
        return bisect.bisect_right(times, now) - bisect.bisect_right(times, now - seconds)


class Score(msgspec.Struct, gc=False, array_like=True):
    """An interest score that halves every `half_life` seconds without new points."""

    value: float
    at: float

    def at_time(self, now: float, half_life: float) -> float:
        if now <= self.at:
            return self.value
        return self.value * math.exp2((self.at - now) / half_life)


class Purchase(msgspec.Struct, gc=False, array_like=True, frozen=True):
    at: float
    order_id: str | None
    categories: tuple[str, ...]
    revenue: float | None
    products: tuple[str, ...] = ()  # the order's product ids, at most MAX_PURCHASE_PRODUCTS


class RecentEvent(msgspec.Struct, gc=False, array_like=True, frozen=True):
    event_id: str
    kind: str
    name: str
    time: float


class Timer(msgspec.Struct, gc=False, frozen=True, omit_defaults=True):
    """A pending wake-up owned by one rule; `cancel_on` lists `kind:name` keys that void it,
    `cancel_when` the keys that void it only with given property values."""

    timer_id: str
    name: str
    rule_id: str
    due: float
    set_at: float
    cause_event_id: str
    cancel_on: tuple[str, ...] = ()
    payload: dict[str, Any] = {}
    shadow: bool = False  # set by a rule in shadow mode: the first to go when timers are full
    # (key, properties): the event `key` voids it only when its properties hold those values
    cancel_when: tuple[tuple[str, dict[str, Any]], ...] = ()


class RuleMemory(msgspec.Struct, gc=False, omit_defaults=True):
    """What a rule remembers about one contact between events (step, last fire, free data,
    keyed stores); rules reach it through `engine/sdk/memory.py`, which keeps it bounded."""

    fires: int = 0
    last_fired: float | None = None
    step: int = 0
    data: dict[str, Any] = {}
    entered: float | None = None
    keyed: dict[str, dict[str, tuple[float, Any]]] = {}  # name -> key -> (set at, value)

    def remember(self, key: str, value: Any) -> Any:
        """Keep `value` under `key`; return the value it replaces (None the first time), so a
        rule reacts to a change: `before = ctx.memory.remember("zone", zone)`."""
        before = self.data.get(key)
        self.data[key] = value
        return before


class ContactState(msgspec.Struct, gc=False, kw_only=True, omit_defaults=True):
    contact_id: str
    schema: int = 1  # 2 once `addresses` are kept (older states are migrated on their next event)
    merged_into: str | None = None
    identifiers: tuple[str, ...] = ()
    traits: dict[str, Any] = {}
    consent: dict[str, Consent] = {}  # "email" or "email/<group>" -> the newest answer
    timezone: str | None = None
    location: Location | None = None
    preferred_channel: str | None = None
    first_seen: float = 0.0
    last_seen: float = 0.0
    tallies: dict[str, Tally] = {}
    purchases: tuple[Purchase, ...] = ()
    stage: str = "awareness"
    lifecycle: str = "prospect"
    recent: tuple[RecentEvent, ...] = ()
    seen_hashes: list[int] = []  # before `seen`: read once, then folded into it
    memory: dict[str, RuleMemory] = {}
    history: tuple[Contacted, ...] = ()
    timers: tuple[Timer, ...] = ()
    decisions: tuple[DecisionRecord, ...] = ()
    outbox: tuple[Action, ...] = ()
    scores: dict[str, Score] = {}
    # "email" -> why every email is blocked (hard bounce); "email/marketing" -> why marketing
    # email is (spam report). Nothing but a new address lifts a hard bounce.
    suppressed: dict[str, str] = {}
    outcomes: dict[str, Outcomes] = {}  # "action|channel" -> evidence
    seen: bytes = b""  # digests of the event ids decided, oldest first
    refused: tuple[Refusal, ...] = ()  # the latest merges and identifiers refused, oldest first
    addresses: dict[str, Address] = {}  # channel -> the contact's own address (email, phone, ...)
    account: Account | None = None
    locale: str | None = None  # the latest call's `context.locale`
    campaign: Touch | None = None  # the newest campaign by event time
    first_campaign: Touch | None = None  # the first touch
    fallbacks: tuple[Fallback, ...] = ()  # the latest actions that have another channel left
    ignored_due: float = 0.0  # when the oldest unjudged action becomes ignored (0: none)
    values: dict[str, Observed] = {}  # declared fields' values (engine/model/values.py)

    # --- reads rules use ----------------------------------------------------------------

    def tally(self, key: str) -> Tally | None:
        return self.tallies.get(key)

    def count(self, key: str) -> int:
        t = self.tallies.get(key)
        return t.count if t else 0

    def next_due(self) -> float | None:
        return min((t.due for t in self.timers), default=None)

    # --- writes the core makes ------------------------------------------------------------

    def bump(self, key: str, at: float) -> Tally:
        t = self.tallies.get(key)
        if t is None:
            if len(self.tallies) >= MAX_TALLIES:
                oldest = min(self.tallies, key=lambda k: self.tallies[k].last)
                del self.tallies[oldest]
            t = self.tallies[key] = Tally(first=at, last=at, count=1, times=(at,))
        else:
            t.count += 1
            if at < t.first:
                t.first = at
            if at > t.last:
                t.last = at
            times = t.times
            if not times or at >= times[-1]:
                t.times = (*times[1 - WINDOW_TIMES:], at)
            else:  # late event: keep the times in order
                i = bisect.bisect_right(times, at)
                t.times = (*times[:i], at, *times[i:])[-WINDOW_TIMES:]
        return t

    def count_within(self, key: str, seconds: float, now: float) -> int:
        """How often `key` happened in the last `seconds` (exact up to `WINDOW_TIMES`)."""
        t = self.tallies.get(key)
        return t.within(seconds, now) if t else 0

    def score(self, domain: str, now: float, half_life: float) -> float:
        s = self.scores.get(domain)
        return s.at_time(now, half_life) if s else 0.0

    def add_score(self, domain: str, points: float, now: float, half_life: float) -> float:
        """Decay the domain's score to `now`, add `points`, and return the new value."""
        prev = self.scores.get(domain)
        value = (prev.at_time(now, half_life) if prev else 0.0) + points
        if prev is None and len(self.scores) >= MAX_SCORES:
            weakest = min(self.scores, key=lambda d: self.scores[d].at_time(now, half_life))
            del self.scores[weakest]
        self.scores[domain] = Score(value, max(now, prev.at) if prev else now)
        return value

    def add_identifier(self, identifier: str) -> None:
        if identifier not in self.identifiers:
            self.identifiers = (*self.identifiers, identifier)[-MAX_IDENTIFIERS:]

    def set_traits(self, traits: dict[str, Any]) -> None:
        for k, v in traits.items():
            if k in self.traits or len(self.traits) < MAX_TRAITS:
                self.traits[k] = v

    def remember(self, event: Event) -> None:
        recent = RecentEvent(event.event_id, event.kind, event.name, event.time)
        self.recent = (*self.recent, recent)[-MAX_RECENT:]

    def add_purchase(self, purchase: Purchase) -> None:
        self.purchases = (*self.purchases, purchase)[-MAX_PURCHASES:]

    def mark_seen(self, event_id: str) -> bool:
        """False when the event was already decided (a duplicate delivery)."""
        self.fold_seen_hashes()
        digest, seen = event_digest(event_id), self.seen
        at = seen.find(digest)
        while at != -1:  # a match must start on a digest boundary
            if at % DIGEST == 0:
                return False
            at = seen.find(digest, at + 1)
        if len(seen) >= MAX_SEEN * DIGEST:
            self.seen = b"".join((memoryview(seen)[DIGEST:], digest))
        else:
            self.seen = seen + digest
        return True

    def fold_seen_hashes(self) -> None:
        """A record from before `seen` kept its digests as a list of ints: pack them."""
        if not self.seen_hashes:
            return
        older = b"".join(h.to_bytes(DIGEST, "big", signed=True) for h in self.seen_hashes)
        self.seen = (older + self.seen)[-MAX_SEEN * DIGEST:]
        self.seen_hashes = []

    def seen_count(self) -> int:
        return len(self.seen) // DIGEST + len(self.seen_hashes)

    def add_timer(self, timer: Timer, replaces: str | None = None) -> None:
        """Add a timer; one with the same id, or of the same rule called `replaces`, goes."""
        rule_id, tid = timer.rule_id, timer.timer_id
        timers = [t for t in self.timers if t.timer_id != tid
                  and not (t.name == replaces and t.rule_id == rule_id)]
        timers.append(timer)
        while len(timers) > MAX_TIMERS:  # shadow rules' first, then the one due last
            timers.remove(max(timers, key=_eviction))
        self.timers = tuple(timers)

    def drop_timers(self, match: Callable[[Timer], bool]) -> None:
        """Drop the pending timers `match` selects; most calls find none and copy nothing, and
        a contact with no pending timer costs no scan at all. (A loop rather than any(): two
        calls per event land here, and a generator costs a frame per timer looked at.)"""
        timers = self.timers
        for t in timers:
            if match(t):
                self.timers = tuple(t for t in timers if not match(t))
                return

    def record_decision(self, record: DecisionRecord) -> None:
        self.decisions = (*self.decisions, record)[-MAX_DECISIONS:]

    def record_refusal(self, refusal: Refusal) -> None:
        self.refused = (*self.refused, refusal)[-MAX_REFUSALS:]

    def record_outbox(self, action: Action) -> None:
        """Keep the last actions whole, so a re-delivered trigger re-emits them unchanged."""
        self.outbox = (*self.outbox, action)[-MAX_OUTBOX:]

    def record_fallback(self, fallback: Fallback) -> None:
        self.fallbacks = (*self.fallbacks, fallback)[-MAX_FALLBACKS:]

    def take_fallback(self, action_id: str) -> Fallback | None:
        """The fallback kept for an action, removed: a channel is offered once."""
        found = next((f for f in self.fallbacks if f.action_id == action_id), None)
        if found is not None:
            self.fallbacks = tuple(f for f in self.fallbacks if f is not found)
        return found

    def decided_for(self, trigger_event_id: str) -> list[Action]:
        return [a for a in self.outbox if a.trigger_event_id == trigger_event_id]

    def outcome(self, action: str, channel: str) -> Outcomes:
        key = f"{action}|{channel}"
        o = self.outcomes.get(key)
        if o is None:
            if len(self.outcomes) >= MAX_OUTCOMES:
                del self.outcomes[min(self.outcomes, key=lambda k: self.outcomes[k].sent)]
            o = self.outcomes[key] = Outcomes()
        return o

    def find_action(self, action_id: str) -> Contacted | None:
        return next((h for h in reversed(self.history) if h.action_id == action_id), None)

    def record_contact(self, contacted: Contacted) -> None:
        self.history = (*self.history, contacted)[-MAX_HISTORY:]

    def settle(self, contacted: Contacted, fate: str) -> None:
        """Give an action of the history its fate, if it has none yet."""
        if contacted.fate:
            return
        history = list(self.history)
        for i in range(len(history) - 1, -1, -1):
            if history[i] is contacted:
                history[i] = msgspec.structs.replace(contacted, fate=fate)
                self.history = tuple(history)
                return


def _eviction(t: Timer) -> tuple[bool, float]:
    """Shadow timers never crowd out a live one (docs/rules.md, "Shadow mode")."""
    return t.shadow, t.due


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ContactState)


def encode(state: ContactState) -> bytes:
    return _encoder.encode(state)


def decode(raw: bytes) -> ContactState:
    return _decoder.decode(raw)
