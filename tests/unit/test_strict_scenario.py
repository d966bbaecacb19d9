"""The rule author's kit is strict: a rule that raises fails its test with file and line,
payloads are given one way at a time, and silence (a trigger nothing matched) is reported."""

from __future__ import annotations

import pytest

from engine.errors import RuleFailed
from engine.sdk.rule import Context, Proposal, on, rule
from engine.testing import Scenario


@rule("divides", triggers=[on("track", "Order Completed")])
def divides(ctx: Context) -> Proposal:
    share = ctx.event.properties["revenue"] / ctx.event.properties["items"]
    return Proposal(action=f"thanks-{share:.0f}", channels=("email",))


@rule("remembers", triggers=[on("track", "Product Viewed"), on("track", "Product Addded")])
def remembers(ctx: Context) -> None:
    ctx.memory.remember("last", ctx.event.properties.get("product_id"))


def test_a_rule_that_raises_fails_the_call_with_its_file_and_line() -> None:
    s = Scenario([divides])
    line = divides.body.__code__.co_firstlineno + 2  # the division, under the decorator and def
    with pytest.raises(RuleFailed, match=rf"test_strict_scenario\.py:{line}: rule 'divides' raised "
                       r"ZeroDivisionError: division by zero") as failed:
        s.track("u1", "Order Completed", revenue=10, items=0)
    assert isinstance(failed.value.__cause__, ZeroDivisionError)
    s.identify("u2", email="a@b.c", consent={"email": True})
    assert [a.action for a in s.track("u2", "Order Completed", revenue=10, items=2)] == ["thanks-5"]


def test_recording_rule_errors_is_an_explicit_choice() -> None:
    s = Scenario([divides], rule_errors="record")
    assert s.track("u1", "Order Completed", revenue=10, items=0) == []
    assert s.runtime.pipeline.rule_failures["divides"] == "ZeroDivisionError: division by zero"
    with pytest.raises(ValueError, match="rule_errors='ignore': give 'raise' or 'record'"):
        Scenario([divides], rule_errors="ignore")  # type: ignore[arg-type]


def test_identify_takes_traits_as_a_dict_or_as_keywords_alike() -> None:
    s = Scenario([])
    s.identify("u1", traits={"email": "a@b.c", "consent": {"email": True}})
    s.identify("u2", email="d@e.f", consent={"email": True})
    for user, address in (("u1", "a@b.c"), ("u2", "d@e.f")):
        st = s.contact(user)
        assert "traits" not in st.traits and st.consent["email"].granted
        assert f"email:{address}" in st.identifiers


def test_track_takes_properties_as_a_dict_or_as_keywords_alike() -> None:
    s = Scenario([remembers])
    s.track("u1", "Product Viewed", properties={"product_id": "sku-1"})
    s.track("u2", "Product Viewed", product_id="sku-2", anonymousId="anon-2")
    first, second = s.memory("u1", "remembers"), s.memory("u2", "remembers")
    assert first is not None and first.data == {"last": "sku-1"}
    assert second is not None and second.data == {"last": "sku-2"}
    assert s.memory("u2", "no-such-rule") is None
    assert "user:u2" in s.contact("u2").identifiers


@pytest.mark.parametrize("call", ["identify", "track"])
def test_a_dict_and_keyword_fields_at_once_are_refused(call: str) -> None:
    s = Scenario([])
    name = "traits" if call == "identify" else "properties"
    args = ("u1",) if call == "identify" else ("u1", "Product Viewed")
    with pytest.raises(TypeError, match=rf"{name}=\{{...\}} and keyword fields \['plan'\] both "
                       rf"given: put them all in {name}="):
        getattr(s, call)(*args, **{name: {"email": "a@b.c"}}, plan="pro")


def test_triggers_no_event_matched_are_reported() -> None:
    s = Scenario([remembers, divides])
    s.track("u1", "Product Viewed", product_id="sku-1")
    assert s.unmatched_triggers() == [
        "test_strict_scenario: rule 'remembers': trigger track:Product Addded matched no event",
        "test_strict_scenario: rule 'divides': trigger track:Order Completed matched no event",
    ]

