"""The nesting bound: what is refused, where it says the fault is, and what it does not count."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import DecodeError
from engine.model.bounds import MAX_DEPTH, check_depth
from engine.model.events import decode


def arrays(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("nest", [arrays, objects])
@pytest.mark.parametrize("depth", [63, 64])
def test_up_to_the_limit_passes(nest: object, depth: int) -> None:
    check_depth(nest(depth))  # type: ignore[operator]


@pytest.mark.parametrize(("nest", "path"), [(arrays, r"\$(\[0\]){64}`$"),
                                            (objects, r"\$(\.a){64}`$")])
@pytest.mark.parametrize("depth", [65, 100, 400, 5000])
def test_beyond_the_limit_is_refused_with_the_path(nest: object, path: str, depth: int) -> None:
    with pytest.raises(DecodeError, match=r"^nested deeper than 64 levels - at `" + path):
        check_depth(nest(depth))  # type: ignore[operator]


def test_the_path_names_keys_and_indexes() -> None:
    raw = b'{"x":[0,1,{"a b":' + b"[" * 62 + b"2" + b"]" * 62 + b"}]}"
    with pytest.raises(DecodeError, match=r"at `\$\.x\[2\]\['a b'\](\[0\]){61}`$"):
        check_depth(raw)


def test_many_shallow_brackets_are_not_depth() -> None:
    check_depth(orjson.dumps({"products": [{"tags": [i]} for i in range(5_000)]}))


@pytest.mark.parametrize("inside", ["[" * 100, "]" * 100 + "[" * 100, '\\"' + "[" * 100,
                                    "\\\\" * 3 + '\\"{' * 100])
def test_brackets_inside_strings_are_not_counted(inside: str) -> None:
    raw = orjson.dumps({"text": inside, "more": [[inside]], "deep": [[[[{"k": inside}]]]]})
    check_depth(raw)
    assert decode("clickstream", raw.replace(b"{", b'{"messageId":"m","type":"page",'
                                              b'"userId":"u","timestamp":"2026-01-01T00:00:00Z",',
                                              1)).kind == "page"


def test_an_escaped_quote_does_not_hide_real_nesting() -> None:
    raw = b'{"a":"x\\\\",' + b'"b":[' * 65 + b"]" * 65 + b"}"  # the string ends at the quote
    with pytest.raises(DecodeError, match="nested deeper than 64"):
        check_depth(raw)


def test_every_decoder_applies_it() -> None:
    for source in ("clickstream", "email", "social", "outcome"):
        with pytest.raises(DecodeError, match="nested deeper than 64 levels"):
            decode(source, b'{"properties":' + arrays(MAX_DEPTH))  # type: ignore[arg-type]


@given(st.recursive(st.integers(-9, 9) | st.text(alphabet="[]{}\"\\ab", max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(alphabet="[]{}\"\\ab", max_size=3), inner,
                                      max_size=3),
                    max_leaves=30))
def test_it_agrees_with_the_real_depth(value: object) -> None:
    def depth(v: object) -> int:
        if isinstance(v, list):
            return 1 + max(map(depth, v), default=0)
        if isinstance(v, dict):
            return 1 + max(map(depth, v.values()), default=0)
        return 0

    raw, real = orjson.dumps(value), depth(value)
    for limit in (max(real - 1, 0), real):
        if real > limit:
            with pytest.raises(DecodeError):
                check_depth(raw, limit)
        else:
            check_depth(raw, limit)
