"""Wire bytes to `Event`: each source's shape, and precise reasons for what is rejected."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import DecodeError
from engine.model.events import decode, detect_source, iso


def seg(**fields: object) -> bytes:
    base = {"messageId": "m1", "type": "track", "event": "Order Completed", "userId": "u1",
            "timestamp": "2026-11-02T09:15:00Z"}
    return orjson.dumps({**base, **fields})


def test_segment_track_with_context_and_product_categories() -> None:
    ev = decode("clickstream", seg(
        anonymousId="a1",
        properties={"category": "baby", "products": [{"category": "toys"}, {"category": "baby"}]},
        context={"timezone": "Europe/Paris", "location": {"city": "Paris", "country": "FR"},
                 "consent": {"categoryPreferences": {"Advertising": False}}, "ip": "127.0.0.1",
                 "userAgent": "x", "library": {"name": "analytics-python"}},
        sentAt="2026-11-02T09:15:01Z",  # unknown fields are tolerated
    ))
    assert (ev.event_id, ev.source, ev.kind, ev.name) == ("m1", "clickstream", "track", "Order Completed")
    assert ev.categories == ("baby", "toys")
    assert ev.time == 1793610900.0
    assert ev.timezone == "Europe/Paris" and ev.location is not None and ev.location.city == "Paris"
    assert ev.consent == {"Advertising": False}
    assert ev.user_id == "u1" and ev.anonymous_id == "a1" and ev.authenticated


def test_identify_normalises_email_and_page_uses_its_name() -> None:
    ev = decode("clickstream", seg(type="identify", event=None, traits={"email": " Ada@Example.COM "}))
    assert ev.kind == "identify" and ev.email == "ada@example.com"
    page = decode("clickstream", seg(type="page", event=None, name="/pricing", userId=None,
                                     anonymousId="a1"))
    assert (page.kind, page.name, page.authenticated) == ("page", "/pricing", False)


def test_timestamp_without_offset_is_utc() -> None:
    assert decode("clickstream", seg(timestamp="2026-11-02T09:15:00")).time == 1793610900.0


@pytest.mark.parametrize("event", ["open", "click", "bounce", "unsubscribe", "spamreport",
                                   "group_unsubscribe", "delivered", "processed", "dropped",
                                   "deferred"])
def test_every_email_event_type_decodes(event: str) -> None:
    raw = orjson.dumps({"event": event, "email": "A@B.co", "timestamp": 1793610900,
                        "sg_event_id": "sg1", "category": ["news", "promo"], "url": "https://x"})
    ev = decode("email", raw)
    assert (ev.kind, ev.name, ev.email, ev.categories) == ("email", event, "a@b.co", ("news", "promo"))
    assert not ev.authenticated


def test_social_with_iso_or_unix_time_and_a_normalised_handle() -> None:
    base = {"event_id": "s1", "network": "Twitter", "action": "mention", "handle": "@Ada",
            "text": "hi", "post_id": "p1"}
    a = decode("social", orjson.dumps({**base, "timestamp": "2026-11-02T09:15:00Z"}))
    b = decode("social", orjson.dumps({**base, "timestamp": 1793610900}))
    assert a.time == b.time == 1793610900.0
    assert a.handle == "twitter:ada" and a.properties == {"post_id": "p1", "text": "hi"}


@pytest.mark.parametrize(
    ("source", "raw", "reason"),
    [
        ("clickstream", b"\xff\xfe garbage", r"^invalid JSON"),
        ("clickstream", seg()[:30], r"^invalid JSON: Input data was truncated"),
        ("clickstream", seg(event=42), r"Expected `str \| null`, got `int` - at `\$\.event`"),
        ("clickstream", seg(timestamp={"x": 1}), r"at `\$\.timestamp`"),
        ("clickstream", seg(type="merge"), r"at `\$\.type`"),
        ("clickstream", seg(type="alias", previousId=None), r"an alias call needs a previousId - at `\$\.previousId`"),
        ("clickstream", seg(type="alias", previousId="a1", userId=None, anonymousId="a1"), r"an alias call needs a userId - at `\$\.userId`"),
        ("clickstream", seg(type="group", userId="u1"), r"a group call needs a groupId - at `\$\.groupId`"),
        ("clickstream", seg(type="group", groupId="g" * 300), r"longer than 256 characters - at `\$\.groupId`"),
        ("clickstream", seg(type="screen", userId=None), r"one of userId or anonymousId is required - at `\$\.userId`"),
        ("clickstream", seg(context={"device": {"type": "x" * 65}}), r"longer than 64 characters - at `\$\.context\.device\.type`"),
        ("clickstream", seg(context={"locale": "x" * 65}), r"longer than 64 characters - at `\$\.context\.locale`"),
        ("clickstream", seg(context={"campaign": {"source": "s" * 257}}), r"campaign source longer than 256 characters - at `\$\.context\.campaign\.source`"),
        ("clickstream", seg(context={"traits": ["email"]}), r"Expected `object \| null`, got `array` - at `\$\.context\.traits`"),
        ("clickstream", b"[" * 65 + b"]" * 65, r"nested deeper than 64 levels - at `\$(\[0\]){64}`"),
        ("clickstream", seg(userId=None), r"one of userId or anonymousId is required - at `\$\.userId`"),
        ("clickstream", seg(event=None), r"a track call needs an event name - at `\$\.event`"),
        ("clickstream", seg(timestamp="1970-01-01T00:00:00Z", messageId=""), r"messageId must not be empty"),
        ("clickstream", seg(userId="u" * 300), r"longer than 256 characters - at `\$\.userId`"),
        ("email", orjson.dumps({"event": "open", "email": "a@b.c", "timestamp": 1e13, "sg_event_id": "x"}), r"timestamp out of range .* at `\$\.timestamp`"),
        ("email", orjson.dumps({"event": "opened", "email": "a@b.c", "timestamp": 1, "sg_event_id": "x"}), r"at `\$\.event`"),
        ("email", orjson.dumps({"event": "open", "email": "nobody", "timestamp": 1, "sg_event_id": "x"}), r"not an email address - at `\$\.email`"),
        ("social", orjson.dumps({"event_id": "s", "network": "x", "action": "poke", "handle": "h", "timestamp": 1}), r"at `\$\.action`"),
        ("social", orjson.dumps([1, 2, 3]), r"Expected `object`, got `array`"),
    ],
)
def test_rejections_name_the_field_at_fault(source: str, raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(source, raw)  # type: ignore[arg-type]


def test_mixed_histories_are_told_apart_by_their_id_field() -> None:
    assert detect_source(seg()) == "clickstream"
    assert detect_source(b'{"event":"open","sg_event_id":"x"}') == "email"
    assert detect_source(b'{"event_id":"s","network":"x"}') == "social"
    assert detect_source(b"garbage") == "clickstream"


@given(st.floats(min_value=0, max_value=7_258_118_399.999, allow_nan=False))
def test_iso_formats_exactly_as_datetime_does(t: float) -> None:
    expected = datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
    assert iso(t) == expected.replace("+00:00", "Z")
