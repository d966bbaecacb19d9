"""Merging two contacts' states into one: what a merge keeps, and which side wins."""

from __future__ import annotations

from engine.core.consent import answer
from engine.core.observe import earliest, latest
from engine.model.outreach import MAX_FALLBACKS, Outcomes
from engine.model.state import (
    DIGEST,
    MAX_DECISIONS,
    MAX_HISTORY,
    MAX_OUTBOX,
    MAX_PURCHASES,
    MAX_RECENT,
    MAX_SCORES,
    MAX_SEEN,
    STAGES,
    WINDOW_TIMES,
    ContactState,
    Score,
    seen_digests,
)
from engine.model.values import MAX_VALUES, merged
from engine.sdk.rule import INTEREST_HALF_LIFE


def merge(into: ContactState, other: ContactState) -> ContactState:
    """Fold a merged contact's state into the surviving one; nothing learned is lost.

    Where both know a thing, the surviving contact's value wins, except what combines: counts
    are summed, first times the earlier, last times the later, interest scores added once both
    are decayed to the same moment, outcome evidence added, and consent, the account and the
    latest campaign are the newest, the first campaign the oldest.
    Pending timers (their ids are unique per cause and rule) and fallbacks move over.
    Identifiers are not merged here: the identity rules admit them within their limits
    (`engine/core/linking.py`).
    """
    into.set_traits({k: v for k, v in other.traits.items() if k not in into.traits})
    merge_consents(into, other)
    into.timezone = into.timezone or other.timezone
    into.location = into.location or other.location
    into.preferred_channel = into.preferred_channel or other.preferred_channel
    into.locale = into.locale or other.locale
    into.account = latest(other.account, into.account)
    into.campaign = latest(other.campaign, into.campaign)
    into.first_campaign = earliest(into.first_campaign, other.first_campaign)
    firsts = [t for t in (into.first_seen, other.first_seen) if t]
    into.first_seen = min(firsts) if firsts else 0.0
    into.last_seen = max(into.last_seen, other.last_seen)
    for key, t in other.tallies.items():
        mine_t = into.tallies.get(key)
        if mine_t is None:
            copied = into.bump(key, t.first)
            copied.count, copied.last, copied.times = t.count, t.last, t.times
        else:
            mine_t.count += t.count
            mine_t.first, mine_t.last = min(mine_t.first, t.first), max(mine_t.last, t.last)
            mine_t.times = tuple(sorted(mine_t.times + t.times)[-WINDOW_TIMES:])
    into.purchases = tuple(sorted(into.purchases + other.purchases, key=lambda p: p.at)[
        -MAX_PURCHASES:])
    into.recent = tuple(sorted(into.recent + other.recent, key=lambda r: r.time)[-MAX_RECENT:])
    into.fold_seen_hashes()
    other.fold_seen_hashes()
    theirs = set(seen_digests(other.seen))
    ours = b"".join(d for d in seen_digests(into.seen) if d not in theirs)
    into.seen = (other.seen + ours)[-MAX_SEEN * DIGEST:]
    for rule_id, m in other.memory.items():
        into.memory.setdefault(rule_id, m)
    for vk, held in other.values.items():
        mine_v = into.values.get(vk)
        into.values[vk] = held if mine_v is None else merged(mine_v, held)
    while len(into.values) > MAX_VALUES:
        del into.values[min(into.values, key=lambda k: into.values[k].at)]
    into.history = tuple(sorted(into.history + other.history, key=lambda h: h.at)[-MAX_HISTORY:])
    for timer in other.timers:
        into.add_timer(timer)
    into.decisions = tuple(sorted(into.decisions + other.decisions, key=lambda d: d.at)[
        -MAX_DECISIONS:])
    into.outbox = (other.outbox + into.outbox)[-MAX_OUTBOX:]
    into.fallbacks = (other.fallbacks + into.fallbacks)[-MAX_FALLBACKS:]
    dues = [d for d in (into.ignored_due, other.ignored_due) if d]
    into.ignored_due = min(dues) if dues else 0.0
    for domain, score in other.scores.items():
        mine_s = into.scores.get(domain)
        into.scores[domain] = score if mine_s is None else combine_scores(mine_s, score)
    if len(into.scores) > MAX_SCORES:  # keep the strongest interests
        now = max(s.at for s in into.scores.values())
        strongest = sorted(into.scores.items(),
                           key=lambda ds: -ds[1].at_time(now, INTEREST_HALF_LIFE))
        into.scores = dict(strongest[:MAX_SCORES])
    for channel, address in other.addresses.items():
        mine_a = into.addresses.get(channel)
        if mine_a is None or address.at > mine_a.at:
            into.addresses[channel] = address
    for channel, why in other.suppressed.items():
        into.suppressed.setdefault(channel, why)
    for key, o in other.outcomes.items():
        mine_o = into.outcomes.get(key)
        into.outcomes[key] = o if mine_o is None else Outcomes(
            sent=mine_o.sent + o.sent, positive=mine_o.positive + o.positive,
            negative_streak=mine_o.negative_streak + o.negative_streak,
            suppressed_until=max(mine_o.suppressed_until, o.suppressed_until))
    if other.stage in STAGES and into.stage in STAGES:
        into.stage = max(into.stage, other.stage, key=STAGES.index)
    if into.lifecycle == "prospect":
        into.lifecycle = other.lifecycle
    return into


def merge_consents(into: ContactState, other: ContactState) -> None:
    """Per channel and group, the answer the consent model keeps (engine/core/consent.py):
    the newest, whichever contact gave it."""
    for key, given in other.consent.items():
        answer(into, key, given)


def combine_scores(a: Score, b: Score) -> Score:
    """Both scores decayed to the later one's time (the shared interest half-life), added."""
    at = max(a.at, b.at)
    return Score(a.at_time(at, INTEREST_HALF_LIFE) + b.at_time(at, INTEREST_HALF_LIFE), at)
