"""Hostile input at the HTTP edge, over real HTTP on loopback: whatever a client sends, the
answer is 200, or a 4xx with a JSON `code` and `message` - never a 500, never a dropped
connection - and nothing of a refused request reaches the engine or its dead letters."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import time
from collections.abc import Iterator, Sequence

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.collector import Accepted, CollectorConfig, Refused, collector_app
from tests.unit.test_fuzz_decoders import JSONISH, PLAUSIBLE

PATHS = ("/v1/track", "/v1/page", "/v1/identify", "/v1/batch", "/v1/screen", "/v1/group",
         "/v1/alias", "/v1/webhooks/email", "/v1/webhooks/email/mailgun", "/v1/webhooks/social",
         "/v1/contacts/c1/next-best-action", "/v1/unknown")
SEGMENT = PATHS[:7]
ALLOWED = {200, 400, 401, 404, 413}
KEY = "Basic " + base64.b64encode(b"wk_fuzz:").decode()
AUTH = st.sampled_from([KEY, "", "Basic", "Basic !!!", "Bearer x", "Basic " + base64.b64encode(
    "wk_fuzz\u00e9:".encode()).decode(), "Basic " + base64.b64encode(b"\xff\xfe:").decode()])


class Recorder:
    def __init__(self) -> None:
        self.accepted: list[Accepted] = []
        self.refused: list[Refused] = []

    async def accept(self, events: Sequence[Accepted], refused: Sequence[Refused] = ()) -> None:
        self.accepted.extend(events)
        self.refused.extend(refused)


class Edge:
    """One collector on 127.0.0.1 for the whole module, driven from a private event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.sink = Recorder()
        app = collector_app(self.sink, CollectorConfig(
            write_keys=frozenset({"wk_fuzz"}), sendgrid_public_key="", social_webhook_secret="s",
            mailgun_signing_key="mg"))
        self.server = TestServer(app, host="127.0.0.1")
        self.loop.run_until_complete(self.server.start_server())
        self.session = self.loop.run_until_complete(self._session())

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        async def go() -> tuple[int, bytes]:
            method = "GET" if path.endswith("next-best-action") else "POST"
            async with self.session.request(method, self.server.make_url(path), data=body,
                                            headers=headers) as r:
                return r.status, await r.read()

        return self.loop.run_until_complete(go())


    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.run_until_complete(self.server.close())
        self.loop.close()


@pytest.fixture(scope="module")
def e() -> Iterator[Edge]:
    edge = Edge()
    yield edge
    edge.close()


def check(e: Edge, path: str, body: bytes, headers: dict[str, str]) -> dict:
    before = len(e.sink.accepted), len(e.sink.refused)
    status, answer = e.post(path, body, headers)
    assert status in ALLOWED, (status, answer[:300])
    parsed = orjson.loads(answer)
    if status != 200:
        assert isinstance(parsed["code"], str) and isinstance(parsed["message"], str)
        assert (len(e.sink.accepted), len(e.sink.refused)) == before  # nothing got in
    return {"status": status, **parsed}


HEADER_TEXT = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=30)


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(PATHS), st.binary(max_size=3_000), AUTH,
       st.sampled_from(["", "gzip", "deflate", "br"]), HEADER_TEXT, HEADER_TEXT)
def test_random_bytes_and_headers(e: Edge, path: str, body: bytes, auth: str, encoding: str,
                                  signature: str, stamp: str) -> None:
    headers = {"Content-Type": "application/json", "X-Kairos-Signature": signature,
               "X-Kairos-Timestamp": stamp, "X-Twilio-Email-Event-Webhook-Signature": signature,
               "X-Twilio-Email-Event-Webhook-Timestamp": stamp}
    if auth:
        headers["Authorization"] = auth
    if encoding:
        headers["Content-Encoding"] = encoding
    check(e, path, body, headers)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(SEGMENT), st.one_of(PLAUSIBLE, JSONISH, st.lists(PLAUSIBLE, max_size=5)),
       st.booleans(), st.booleans())
def test_plausible_events_with_wrong_types_plain_and_gzipped(
    e: Edge, path: str, obj: object, batch: bool, gzipped: bool
) -> None:
    try:
        body = orjson.dumps({"batch": obj} if batch else obj)
    except (TypeError, orjson.JSONEncodeError):
        body = repr(obj).encode("utf-8", "surrogatepass")
    headers = {"Content-Type": "application/json", "Authorization": KEY}
    if gzipped:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    check(e, path, body, headers)


def test_deep_nesting_huge_arrays_and_bombs(e: Edge) -> None:
    headers = {"Content-Type": "application/json", "Authorization": KEY}
    check(e, "/v1/track", b"[" * 20_000 + b"]" * 20_000, headers)
    check(e, "/v1/batch", b'{"batch":' + b"[" * 10_000 + b"]" * 10_000 + b"}", headers)
    check(e, "/v1/batch", b'{"batch":[' + b"{}," * 150_000 + b"{}]}", headers)
    bomb = gzip.compress(b"{" + b" " * 50_000_000 + b"}")
    check(e, "/v1/batch", bomb, {**headers, "Content-Encoding": "gzip"})
    check(e, "/v1/track", b'{"messageId":"\\ud800","type":"track","event":"e","userId":"u",'
                       b'"timestamp":"9999-12-31T23:59:59Z"}', headers)


def signed(body: bytes) -> dict[str, str]:
    """The social webhook's signature under the edge's secret: a deep body that is signed."""
    stamp = str(int(time.time()))
    mac = hmac.new(b"s", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Kairos-Timestamp": stamp, "X-Kairos-Signature": f"sha256={mac}"}


def nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("depth", [65, 100, 400, 1_000, 1_023, 1_024, 1_025, 2_500, 5_000])
@pytest.mark.parametrize("kind", ["array", "object"])
def test_json_nested_deeper_than_the_bound_is_a_400(e: Edge, depth: int, kind: str) -> None:
    """Past 64 levels a body is refused before anything recurses into it (orjson alone gives
    up at 1024, and re-encoding a few hundred levels overflowed the encoder: a 500)."""
    headers = {"Content-Type": "application/json", "Authorization": KEY}
    deep = nested(depth, kind)
    item = b'{"messageId":"d","type":"track","event":"e","userId":"u","properties":' + deep + b"}"
    step = "[0]" if kind == "array" else ".a"
    inside = ".properties" + step * 63  # the path of the 65th container, past the bound
    in_batch = ".batch[1].properties" + step * 61  # the envelope and the array are two of them
    for path, body, field in (("/v1/track", item, "$" + inside), ("/v1/identify", deep, "$" + step * 64),
                              ("/v1/batch", b'{"batch":[{"type":"track"},' + item + b"]}",
                               "$" + in_batch),
                              ("/v1/webhooks/social", item, "$" + inside),
                              ("/v1/webhooks/email/mailgun", item, "$" + inside)):
        answer = check(e, path, body, {**headers, **signed(body)})
        assert (answer["status"], answer["code"], answer["field"]) == (400, "too_deep", field), path
        assert "nested deeper than 64 levels" in answer["message"]


def test_nesting_within_the_bound_is_judged_as_an_event(e: Edge) -> None:
    headers = {"Content-Type": "application/json", "Authorization": KEY}
    props = b'{"a":' * 60 + b"1" + b"}" * 60
    item = b'{"messageId":"n60","type":"track","event":"e","userId":"u","properties":' + props
    answer = check(e, "/v1/batch", b'{"batch":[' + item + b"}]}", headers)
    assert (answer["status"], answer["accepted"], answer["rejected"]) == (200, 1, [])
