"""What the collector makes of a request: bounded bytes, bounded JSON, and a verdict per item.

A request as a whole is refused (`Rejected`, a JSON 4xx) only for what the sender must fix for
all of it: its key, its size, its JSON. Inside a well-formed batch or webhook each item is judged
alone: `Accepted` goes on to the engine, `Refused` to the dead-letter sink with its index and the
field at fault, so one bad item never costs the good ones beside it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from engine.errors import DecodeError
from engine.model.bounds import check_depth
from engine.model.catalogue import decode_item
from engine.model.deadletter import DeadLetter
from engine.model.events import Source, decode, social_handle

MAX_EVENT = 32 * 1024
MAX_BATCH = 500 * 1024
MAX_BATCH_EVENTS = 2500  # Segment's own limit on the calls in one batch
MAX_WEBHOOK = 1024 * 1024

# The field that names what an item is: a string there that no decoder takes is a type this
# collector does not support (yet), not a malformed item. A catalogue item has no such field.
DISCRIMINATOR: dict[Source, str] = {"clickstream": "type", "email": "event", "social": "action"}
_AT = re.compile(r" - at `(\$[^`]*)`$")
_DECODER_AT = re.compile(r" - at `\$(?:\.([^.\[`]+))?([^`]*)`$")


class Rejected(Exception):
    """The whole request is refused: a JSON error body with `code`, `message` and `field`."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.field = status, code, field


class Unavailable(Exception):
    """The sink cannot take events now (broker down): the sender must retry (503)."""


@dataclass(frozen=True, slots=True)
class Accepted:
    source: Source
    key: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    """One item that could not be accepted; `reason` reads `category: detail - at `path``."""

    index: int
    code: str
    reason: str
    field: str
    source: Source
    key: str
    raw: bytes

    def letter(self, topic: str) -> DeadLetter:
        """The dead letter, on the topic and under the key the item would have had."""
        return DeadLetter.of(self.reason, self.source, self.raw, topic=topic, key=self.key or None)

    def answer(self) -> dict[str, object]:
        """How the response body lists it."""
        return {"index": self.index, "code": self.code, "message": self.reason,
                "field": self.field}

    def rejected(self) -> Rejected:
        """The same verdict for a request of one item: the client must fix it."""
        status = 413 if self.code == "too_large" else 400
        return Rejected(status, self.code, self.reason, self.field)


Verdict = Accepted | Refused


def only(verdict: Verdict) -> Accepted:
    """The item of a one-item request, or its refusal as the request's (a 4xx)."""
    if isinstance(verdict, Refused):
        raise verdict.rejected()
    return verdict


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, inflated when gzipped, never more than `limit` bytes (a zip bomb stops here)."""
    gzipped = request.headers.get("Content-Encoding", "").lower() == "gzip"
    if request.content_length is not None and request.content_length > limit and not gzipped:
        raise Rejected(413, "too_large", f"body larger than {limit} bytes", "$")
    raw = await request.read()
    if gzipped:
        inflater = zlib.decompressobj(wbits=31)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise Rejected(400, "invalid_encoding",
                           "Content-Encoding gzip, but the body is not gzip", "$") from None
    if len(raw) > limit:
        raise Rejected(413, "too_large", f"body larger than {limit} bytes", "$")
    return raw


def parse_json(body: bytes) -> Any:
    """JSON no deeper than the documented bound, checked before anything recurses into it."""
    try:
        check_depth(body)
        return orjson.loads(body)
    except DecodeError as exc:  # the field is the first container opened past the bound
        found = _AT.search(str(exc))
        raise Rejected(400, "too_deep", _AT.sub("", str(exc)),
                       found.group(1) if found else "$") from None
    except orjson.JSONDecodeError as exc:
        raise Rejected(400, "invalid_json", f"invalid JSON: {exc}", "$") from None


def judge(source: Source, item: Any, path: str, index: int,
          renamed: Mapping[str, str] | None = None) -> Verdict:
    """One item of `source`'s shape, decoded by the engine's own decoder.

    `renamed` maps the decoder's field names back to the sender's, for items normalised at the
    edge from another provider's shape, so the field at fault is named as the sender sent it.
    """
    names = renamed or {}
    raw = orjson.dumps(item)
    if not isinstance(item, dict):
        return Refused(index, "not_an_object",
                       f"schema violation: expected an object - at `{path}`", path, source, "", raw)
    key = would_be_key(source, item)
    if len(raw) > MAX_EVENT:
        return Refused(index, "too_large", f"too large: {len(raw)} bytes, over the {MAX_EVENT}-byte"
                       f" limit for one event - at `{path}`", path, source, key, raw)
    try:
        if source == "catalogue":
            decode_item(raw)
        else:
            decode(source, raw)
    except DecodeError as exc:
        reason = _relocated(str(exc), path, names)
        found = _AT.search(reason)
        field = found.group(1) if found else path
        tag = DISCRIMINATOR.get(source, "")
        unsupported = (bool(tag) and field == f"{path}.{names.get(tag, tag)}"
                       and isinstance(item.get(tag), str))
        return Refused(index, "unsupported_type" if unsupported else "invalid_event", reason,
                       field, source, key, raw)
    return Accepted(source, key, raw)


def would_be_key(source: Source, item: Mapping[str, Any]) -> str:
    """The partition key the engine routes the item by: its best identifier, as decoded."""
    def text(name: str) -> str:
        value = item.get(name)
        return value if isinstance(value, str) else ""

    if source == "clickstream":
        return text("userId") or text("anonymousId")
    if source == "email":
        return text("email").strip().lower()
    if source == "outcome":
        return text("contact_id")
    if source == "catalogue":
        return text("item_id")
    network, handle = text("network"), text("handle")
    return social_handle(network, handle) if network and handle else ""


def _relocated(reason: str, path: str, renamed: Mapping[str, str]) -> str:
    """The decoder's `- at `$.field`` as the item's place in the request: `$.batch[3].field`."""
    found = _DECODER_AT.search(reason)
    if found is None:
        return f"{reason} - at `{path}`"
    name, rest = found.group(1), found.group(2)
    where = path + (f".{renamed.get(name, name)}" if name else "") + rest
    return f"{reason[:found.start()]} - at `{where}`"
