"""Dead letters keep what a replay needs: key, value, headers, timestamp, null told from empty."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from engine.model import deadletter
from engine.model.deadletter import DeadLetter, Header
from engine.pipeline import Pipeline
from engine.sdk.ruleset import RuleSet

maybe_bytes = st.none() | st.binary(max_size=40)


@given(value=maybe_bytes, key=maybe_bytes,
       headers=st.lists(st.tuples(st.text(max_size=8), maybe_bytes), max_size=4),
       timestamp=st.none() | st.integers(0, 2**62), timestamp_type=st.none() | st.sampled_from([0, 1]))
def test_every_record_comes_back_byte_for_byte_through_the_json(
    value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes | None]],
    timestamp: int | None, timestamp_type: int | None,
) -> None:
    letter = DeadLetter.of("invalid JSON: x", "clickstream", value, topic="t", partition=1,
                           offset=7).with_record(key, headers, timestamp, timestamp_type)
    back = deadletter.decode(deadletter.encode(letter))
    assert back.original() == value
    assert back.original_key() == key
    assert back.original_headers() == headers
    assert (back.timestamp, back.timestamp_type) == (timestamp, timestamp_type)
    assert (back.topic, back.partition, back.offset) == ("t", 1, 7)


def test_null_and_empty_are_told_apart_in_the_json() -> None:
    null = msgspec.json.decode(deadletter.encode(
        DeadLetter.of("r", "s", None).with_record(None, [("h", None)], None, None)))
    empty = msgspec.json.decode(deadletter.encode(
        DeadLetter.of("r", "s", b"").with_record(b"", [("h", b"")], None, None)))
    assert null["value_null"] is True and "key" not in null and "key_b64" not in null
    assert null["headers"] == [["h", None, False]]
    assert "value_null" not in empty and "value" not in empty and empty["key"] == ""
    assert empty["headers"] == [["h", "", False]]


def test_bytes_that_are_not_utf8_are_kept_in_base64() -> None:
    letter = DeadLetter.of("r", "s", b"\xff\x00").with_record(b"\xfe", [("h", b"\x80")], 5, 0)
    raw = msgspec.json.decode(deadletter.encode(letter))
    assert raw["value_b64"] == "/wA=" and raw["key_b64"] == "/g==" and "key" not in raw
    assert raw["headers"] == [["h", "gA==", True]]
    assert letter.headers == [Header("h", "gA==", True)]


def test_a_letter_written_before_the_new_fields_still_decodes() -> None:
    old = b'{"reason":"invalid JSON: x","source":"clickstream","topic":"t","partition":0,' \
          b'"offset":3,"key":"c1","value":"{oops"}'
    letter = deadletter.decode(old)
    assert letter.original() == b"{oops" and letter.original_key() == b"c1"
    assert letter.original_headers() == [] and letter.timestamp is None


def test_a_null_value_on_an_input_topic_is_a_null_dead_letter() -> None:
    pipeline = Pipeline(RuleSet([]))
    letter = pipeline.ingest("clickstream", None, "clickstream", partition=0, offset=1)
    assert isinstance(letter, DeadLetter)
    assert letter.value_null and letter.original() is None
    assert letter.reason == "null value: a tombstone carries no event"
    assert pipeline.metrics.dead_letters[letter.category()] == 1


def test_replay_filters_take_a_category_or_part_of_the_reason_and_a_topic_or_source() -> None:
    from engine.ops.deadletters import Filter

    letter = DeadLetter.of("invalid JSON: JSON is malformed", "clickstream", b"{",
                           topic="shop.clickstream")
    assert Filter("invalid JSON").matches(letter) and Filter("malformed").matches(letter)
    assert not Filter("schema violation").matches(letter)
    assert Filter(source="shop.clickstream").matches(letter)
    assert Filter("invalid JSON", "clickstream").matches(letter)
    assert not Filter(source="email-events").matches(letter)
