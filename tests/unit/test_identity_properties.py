"""Identity rules hold over any interleaving: one userId per contact, an erasure touches one
person only, and merges lose no count."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.merge import combine_scores, merge
from engine.model import state as state_codec
from engine.model.outreach import Outcomes
from engine.model.state import ContactState, Score, Tally
from engine.sdk.rule import INTEREST_HALF_LIFE
from engine.testing import Scenario

# (call, userId index or None, anonymousId index, email index or None)
calls = st.lists(
    st.tuples(st.sampled_from(("identify", "track", "page")), st.none() | st.integers(0, 3),
              st.integers(0, 2), st.none() | st.integers(0, 2)),
    min_size=1, max_size=20,
)


def play(steps: list[tuple[str, int | None, int, int | None]]) -> Scenario:
    s = Scenario([])
    for call, user, anon, mail in steps:
        who = f"u{user}" if user is not None else f"anon-{anon}"
        fields: dict[str, object] = {"anonymousId": f"anon-{anon}"} if user is not None else {}
        if call == "identify":
            s.segment("identify", who, traits={"email": f"e{mail}@x.io"} if mail is not None
                      else {}, **fields)
        elif call == "track":
            s.segment("track", who, event="Product Viewed", **fields)
        else:
            s.segment("page", who, name="/", **fields)
        s.advance(seconds=1)
    s.runtime.flush()
    return s


def states(s: Scenario) -> dict[str, ContactState]:
    return {k: state_codec.decode(v) for k, v in s.runtime.contacts.items()}


def root(all_states: dict[str, ContactState], key: str) -> str:
    while (nxt := all_states[key].merged_into) is not None:
        key = nxt
    return key


@settings(max_examples=80, deadline=None)
@given(calls)
def test_no_contact_ever_holds_two_user_ids_and_no_event_is_lost(
    steps: list[tuple[str, int | None, int, int | None]],
) -> None:
    s = play(steps)
    all_states = states(s)
    for st_ in all_states.values():
        assert len([i for i in st_.identifiers if i.startswith("user:")]) <= 1
    for user in {u for _, u, _, _ in steps if u is not None}:
        assert s.contact(f"u{user}").identifiers.count(f"user:u{user}") == 1
    live = [st_ for st_ in all_states.values() if st_.merged_into is None]
    for kind in ("identify", "track", "page"):  # each event decided once, on one contact
        assert sum(st_.count(kind) for st_ in live) == sum(c == kind for c, *_ in steps)


@settings(max_examples=60, deadline=None)
@given(calls, st.integers(0, 3))
def test_erasing_one_person_never_changes_another(
    steps: list[tuple[str, int | None, int, int | None]], victim: int,
) -> None:
    s = play(steps)
    if s.runtime.identity.get(f"user:u{victim}") is None:
        return
    gone = s.contact(f"u{victim}").contact_id
    before = states(s)
    others = {k: s.runtime.contacts[k] for k in before if root(before, k) != gone}
    records = {k: v for k, v in s.runtime.identity.items()
               if v.decode() in before and root(before, v.decode()) != gone}
    s.runtime.forget(f"user:u{victim}")
    s.runtime.flush()
    assert s.runtime.contacts.get(gone) is None
    assert {k: s.runtime.contacts.get(k) for k in others} == others
    assert {k: s.runtime.identity.get(k) for k in records} == records


tallies = st.dictionaries(st.sampled_from(("page", "track", "email:open", "category@baby")),
                          st.tuples(st.integers(1, 50), st.floats(0, 1e6), st.floats(0, 1e6)),
                          max_size=4)


def contact(cid: str, counts: dict[str, tuple[int, float, float]],
            score: tuple[float, float], outcome: tuple[int, int, float]) -> ContactState:
    s = ContactState(contact_id=cid, first_seen=min((a for _, a, _ in counts.values()),
                                                     default=0.0))
    s.tallies = {k: Tally(first=min(a, b), last=max(a, b), count=n) for k, (n, a, b)
                 in counts.items()}
    s.scores = {"baby": Score(*score)}
    s.outcomes = {"offer|email": Outcomes(sent=outcome[0], positive=outcome[1],
                                          suppressed_until=outcome[2])}
    return s


scores = st.tuples(st.floats(0, 100), st.floats(0, 1e7))
outcomes = st.tuples(st.integers(0, 9), st.integers(0, 9), st.floats(0, 1e7))


@settings(max_examples=100, deadline=None)
@given(tallies, tallies, scores, scores, outcomes, outcomes)
def test_a_merge_keeps_everything_learned(
    ta: dict[str, tuple[int, float, float]], tb: dict[str, tuple[int, float, float]],
    sa: tuple[float, float], sb: tuple[float, float],
    oa: tuple[int, int, float], ob: tuple[int, int, float],
) -> None:
    a, b = contact("ca", ta, sa, oa), contact("cb", tb, sb, ob)
    later = max(sa[1], sb[1]) + 86_400
    expected_score = sum(Score(*x).at_time(later, INTEREST_HALF_LIFE) for x in (sa, sb))
    merged = merge(a, b)
    for key in ta.keys() | tb.keys():
        assert merged.count(key) == ta.get(key, (0,))[0] + tb.get(key, (0,))[0]
        firsts = [min(v[1], v[2]) for v in (ta.get(key), tb.get(key)) if v]
        assert merged.tallies[key].first == min(firsts)
    assert abs(merged.score("baby", later, INTEREST_HALF_LIFE) - expected_score) <= 1e-6 * (
        1 + expected_score)
    o = merged.outcomes["offer|email"]
    assert (o.sent, o.positive) == (oa[0] + ob[0], oa[1] + ob[1])
    assert o.suppressed_until == max(oa[2], ob[2])


def test_scores_are_decayed_to_the_same_moment_before_they_are_added() -> None:
    old, new = Score(8.0, 0.0), Score(1.0, INTEREST_HALF_LIFE)  # one half-life apart
    assert combine_scores(old, new) == Score(5.0, INTEREST_HALF_LIFE)
    assert combine_scores(new, old) == Score(5.0, INTEREST_HALF_LIFE)
