"""Actions' CloudEvents headers are exactly what the library's Kafka binary mode produces."""

from __future__ import annotations

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from hypothesis import given
from hypothesis import strategies as st

from engine.model import actions as action_codec
from engine.model.actions import CHANNELS, Action
from engine.model.events import iso
from engine.runtime.kafka.action_headers import ActionHeaders, library_headers


def action(t: float, channel: str = "email", rule: str = "welcome", contact: str = "c1") -> Action:
    return Action(action_id=action_codec.action_id(f"e{t}", rule, "send"), contact_id=contact,
                  channel=channel, action="send", rule_id=rule, rule_version=1, score=1.0,
                  reason="r", trigger_event_id=f"e{t}", event_time=iso(t), decided_at=iso(t),
                  expires_at=iso(t + 60))


@given(t=st.floats(0, 4e9), channel=st.sampled_from(CHANNELS),
       rule=st.sampled_from(["welcome", "cart-abandon"]), contact=st.text(min_size=1, max_size=12))
def test_templated_headers_equal_the_librarys_for_every_action(
    t: float, channel: str, rule: str, contact: str,
) -> None:
    headers = ActionHeaders("shop")
    headers.of(action(t + 1.5, channel, rule, "other"))  # the template comes from another action
    a = action(t, channel, rule, contact)
    assert headers.of(a) == library_headers(a, "shop")


def test_whole_seconds_and_fractions_render_as_the_binding_does() -> None:
    headers = ActionHeaders("shop")
    assert dict(headers.of(action(1_700_000_000.0)))["ce_time"] == b"2023-11-14T22:13:20Z"
    assert dict(headers.of(action(1_700_000_000.25)))["ce_time"] == \
        b"2023-11-14T22:13:20.250000Z"


def test_the_library_reads_the_attributes_back() -> None:
    a = action(1_700_000_000.123, channel="sms", contact="c-42")
    body = action_codec.encode(a)
    event = from_binary(KafkaMessage(dict(ActionHeaders("shop").of(a)), b"c-42", body),
                        JSONFormat())
    assert event.get_id() == a.action_id
    assert event.get_type() == "io.kairos.action.sms"
    assert event.get_source() == "kairos/shop/welcome"
    assert event.get_subject() == "c-42"
    assert event.get_specversion() == "1.0"
    assert event.get_time().isoformat() == "2023-11-14T22:13:20.123000+00:00"
    assert event.get_datacontenttype() == "application/json"
    assert action_codec.decode(body) == a
