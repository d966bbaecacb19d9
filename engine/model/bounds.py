"""How deep a JSON document may nest, checked on the raw bytes before anything recurses.

Parsers and encoders recurse once per level: a body a few hundred levels deep can exhaust a
stack or a recursion limit somewhere downstream. Counting brackets is linear and needs no
stack, so a hostile body is refused as a client error before it is parsed at all.
"""

from __future__ import annotations

from engine.errors import DecodeError

__all__ = ["MAX_DEPTH", "check_depth"]

MAX_DEPTH = 64
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def check_depth(raw: bytes, limit: int = MAX_DEPTH) -> None:
    """`DecodeError` if arrays and objects in `raw` nest deeper than `limit` levels.

    Brackets inside JSON strings do not count; a backslash escapes the next byte. The bytes
    need not be valid JSON: whatever else is wrong with them is the parser's to say.
    """
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                raise DecodeError(f"invalid JSON: nested deeper than {limit} levels - at `$`")
        elif byte in _CLOSE:
            depth = max(depth - 1, 0)
