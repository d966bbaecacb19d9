"""The nesting bound every JSON input meets before anything recursive parses it.

A decoder (or an encoder writing the value back out) that recurses per level turns a few
kilobytes of `[[[[…` into a stack overflow or a recursion error: a crash or a 500 instead of
"your input is wrong". `check_depth` refuses anything nested deeper than `MAX_DEPTH` first.

It costs two byte counts for almost every message: a body with no more than `limit` opening
brackets (counting those inside strings too) cannot be nested deeper than that. A body with
more is measured with byte operations only, no Python loop per byte: escapes cut out (only if
there is a backslash), then strings, objects folded into arrays, and the innermost `[]` pairs
removed once per level, which stops after as many passes as the body is deep, or after
`limit`. The path at fault is worked out only for a body that is refused.
"""

from __future__ import annotations

import re

from engine.errors import DecodeError

__all__ = ["MAX_DEPTH", "check_depth"]

MAX_DEPTH = 64

_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]', re.DOTALL)
_ESCAPE = re.compile(rb"\\.", re.DOTALL)  # a backslash and the byte it escapes
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_FOLD = bytes.maketrans(b"{}", b"[]")  # depth is all that matters here: objects as arrays
_KEY_SHOWN = 40  # a key longer than this is cut in the error message


def check_depth(raw: bytes, limit: int = MAX_DEPTH) -> None:
    """Raise `DecodeError` when `raw` holds arrays or objects nested deeper than `limit`."""
    if raw.count(b"[") + raw.count(b"{") <= limit:  # brackets inside strings only add to it
        return
    shape = raw.translate(None, _NOT_STRUCTURE)
    if b"\\" in raw:  # an escaped quote is not a quote: drop every escape first
        shape = _ESCAPE.sub(b"", raw).translate(None, _NOT_STRUCTURE)
    # Two quotes in a row enclose no bracket whichever string they end or start, and dropping
    # them keeps the rest alternating: what is left between quotes 2k and 2k+1 is inside one.
    shape = shape.replace(b'""', b"")
    if b'"' in shape:
        shape = b"".join(shape.split(b'"')[::2])
    brackets = shape.translate(_FOLD)
    # One long run of openers is the usual hostile body, found without peeling it level by level.
    if b"[" * (limit + 1) in brackets or not _within(brackets, limit):
        raise DecodeError(f"nested deeper than {limit} levels - at `{_path_at(raw, limit)}`")


def _within(brackets: bytes, limit: int) -> bool:
    """Whether a string of `[` and `]` nests at most `limit` deep: each pass peels one level."""
    for _ in range(limit):
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):  # empty, or unbalanced: the parser says what is wrong
            return True
        brackets = inner
    return b"[]" not in brackets


def _path_at(raw: bytes, limit: int) -> str:
    """The JSON path of the first array or object opened deeper than `limit`."""
    steps: list[str | int] = []  # per open container: the index in an array, the key in an object
    last = ""
    for m in _TOKEN.finditer(raw):
        tok = m.group()
        if tok in (b"[", b"{"):
            if len(steps) == limit:
                break
            steps.append(0 if tok == b"[" else "")
        elif tok in (b"]", b"}"):
            if steps:
                steps.pop()
        elif not steps:
            continue
        elif tok == b",":
            top = steps[-1]
            steps[-1] = top + 1 if isinstance(top, int) else ""
        elif tok == b":":
            steps[-1] = last
        else:
            last = tok[1:-1].decode("utf-8", "replace")
    return "$" + "".join(map(_step, steps))


def _step(key: str | int) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    if len(key) > _KEY_SHOWN:
        key = key[:_KEY_SHOWN] + "…"
    return f".{key}" if key.isidentifier() else f"[{key!r}]"
