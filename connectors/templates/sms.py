"""SMS segments: how many parts a text costs, GSM-7 (with its extension table) or UCS-2.

GSM 03.38: 160 septets in one message, 153 a part once concatenated (the header takes 7); a
character of the extension table (`{`, `€`, ...) is an escape plus itself, two septets, and is
never split across parts. Any other character makes the whole text UCS-2: 70 in one message,
67 a part; a character outside the BMP (an emoji) takes two UTF-16 units.
"""

from __future__ import annotations

__all__ = ["GSM7_BASIC", "GSM7_EXTENSION", "Segments", "segments"]

from typing import NamedTuple

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


class Segments(NamedTuple):
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int  # messages the text is sent as


def segments(text: str) -> Segments:
    """The encoding a phone network would use for `text`, and the parts it is split into."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        sizes = [2 if c in GSM7_EXTENSION else 1 for c in text]
        return Segments("GSM-7", sum(sizes), _parts(sizes, 160, 153))
    sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return Segments("UCS-2", sum(sizes), _parts(sizes, 70, 67))


def _parts(sizes: list[int], single: int, part: int) -> int:
    """Parts needed, a character (escape pair, surrogate pair) never split between two."""
    total = sum(sizes)
    if total <= single:
        return 1 if total else 0
    count, used = 1, 0
    for size in sizes:
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return count
