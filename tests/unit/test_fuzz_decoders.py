"""Hostile input at the decoders: whatever the bytes, an `Event` or a `DecodeError` naming why,
never another exception (which would crash a worker or become a 500 at the edge)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import DecodeError
from engine.model.events import Event, decode

SOURCES = ("clickstream", "email", "social", "outcome")
FIELDS = ("messageId", "type", "event", "userId", "anonymousId", "timestamp", "properties",
          "traits", "context", "timezone", "location", "email", "sg_event_id", "category",
          "url", "reason", "event_id", "network", "action", "handle", "user_id", "post_id",
          "text", "products", "consent", "categoryPreferences", "contact_id", "outcome",
          "action_id", "channel", "name", "order_id", "revenue", "phone")
TRICKY_TEXT = st.sampled_from([
    "", "\x00", "\ud800", "\udfff", "\u202e", "e\u0301", "😀" * 100, "a" * 100_000,
    "2026-13-45T99:99:99Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
    "1970-01-01T00:00:00+25:00", "NaN", "-1", "1e309", "track", "page", "identify",
    "open", "click", "unsubscribe", "like", "mention", "email", "Order Completed",
])
NUMBERS = st.one_of(st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, -1, 2**63, 253402300800, -62135596801, 1e20]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=40), TRICKY_TEXT)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), inner,
                        max_size=8),
    ),
    max_leaves=40,
)
PLAUSIBLE = st.fixed_dictionaries({}, optional={f: JSONISH for f in FIELDS})


def decodes_or_says_why(source: str, raw: bytes) -> None:
    try:
        event = decode(source, raw)  # type: ignore[arg-type]
    except DecodeError as exc:
        assert str(exc)  # a reason, always
        return
    assert isinstance(event, Event) and event.event_id and event.time == event.time


def dumps(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):  # NaN, huge ints, lone surrogates: hand-made
        return repr(value).encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SOURCES), st.binary(max_size=2_000))
def test_random_bytes(source: str, raw: bytes) -> None:
    decodes_or_says_why(source, raw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SOURCES), PLAUSIBLE)
def test_the_right_field_names_with_wrong_types_and_edge_values(source: str, obj: dict) -> None:
    decodes_or_says_why(source, dumps(obj))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(SOURCES), st.integers(min_value=1, max_value=100_000),
       st.sampled_from(["[", "{\"properties\":"]))
def test_deep_nesting(source: str, depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    decodes_or_says_why(source, (opener * depth + "1" + closer * depth).encode())


def test_huge_arrays_and_strings_and_escaped_surrogates() -> None:
    for source in SOURCES:
        decodes_or_says_why(source, b'{"properties":{"products":[' + b"{}," * 200_000 + b"{}]}}")
        decodes_or_says_why(source, b'{"userId":"' + b"x" * 5_000_000 + b'"}')
        decodes_or_says_why(source, b'{"messageId":"\\ud800","type":"track","event":"x",'
                                    b'"userId":"\\udfff","timestamp":"2026-11-02T10:00:00Z"}')


def test_timestamps_far_in_the_past_and_future() -> None:
    for ts in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1900-02-29T00:00:00Z"):
        decodes_or_says_why("clickstream", orjson.dumps(
            {"messageId": "m", "type": "track", "event": "x", "userId": "u", "timestamp": ts}))
    for ts in (-(2**62), 2**62, 1e300, -1e300, 0):
        decodes_or_says_why("email", orjson.dumps(
            {"event": "open", "email": "a@b.c", "timestamp": ts, "sg_event_id": "e"}))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(SOURCES), st.integers(min_value=65, max_value=5_000),
       st.sampled_from(["[", "{\"properties\":", "[{\"a\":"]))
def test_nesting_beyond_the_bound_is_refused_before_parsing(source: str, depth: int,
                                                             opener: str) -> None:
    closer = {"[": "]", "{\"properties\":": "}", "[{\"a\":": "}]"}[opener]
    raw = (opener * depth + "1" + closer * depth).encode()
    with pytest.raises(DecodeError, match=r"^nested deeper than 64 levels - at `\$"):
        decode(source, raw)  # type: ignore[arg-type]
