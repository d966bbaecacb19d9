"""The web channel shows a visitor only their own action: on `kairos run --http` (the embedded
engine) and on the Kafka collector (a real worker, `kairos connect web`, Redis), over HTTP."""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from connectors.channels.web import RedisWeb
from connectors.collector import collector_app
from connectors.connect import connect
from connectors.serve import collector_config
from connectors.sinks import KafkaSink
from connectors.visitor_tokens import sign
from engine.config import Settings
from engine.core.identity import contact_id_for
from engine.keys import visitor_key
from engine.testing import UNLIMITED_POLICY
from engine.testing.kafka import Worker
from tests.helpers import rules_dir
from tests.integration.servers import kairos_run_http

WRITE, READ, SECRET, ID_KEY = "wk_public", "rk_secret", "token-secret", "contact-id-key-42"
ORIGIN = "https://shop.example"
def offer_rules(tmp_path: Path) -> Path:
    """The offer rule, and the web content its action shows (connectors/templates/)."""
    rules = rules_dir(tmp_path, offer__py=OFFER_RULE)
    (rules / "templates" / "offer").mkdir(parents=True, exist_ok=True)
    (rules / "templates" / "offer" / "web.json").write_text('{"headline": "An offer for you"}')
    return rules


OFFER_RULE = '''
from engine.sdk import Context, Proposal, on, rule


@rule("web-offer", triggers=[on("page", "/offers")], description="an offer on the site")
def web_offer(ctx: Context) -> Proposal:
    return Proposal(action="offer", channels=("web",), priority=50, ttl=3600)
'''
ENV = {"KAIROS_WRITE_KEYS": WRITE, "KAIROS_READ_KEYS": READ, "KAIROS_WEB_TOKEN_SECRET": SECRET,
       "KAIROS_CONTACT_ID_KEY": ID_KEY, "KAIROS_WEB_ORIGINS": ORIGIN,
       "KAIROS_WEB_TOKEN_MAX_AGE": "3600", "KAIROS_POLICY": str(UNLIMITED_POLICY)}
Answer = tuple[int, Any, dict[str, str]]


def token(identifier: str, ttl: float = 600) -> str:
    return sign(SECRET, identifier, int(time.time() + ttl))


async def get(base: str, path: str, headers: dict[str, str] | None = None,
              method: str = "GET") -> Answer:
    async with aiohttp.ClientSession() as s, s.request(method, base + path,
                                                        headers=headers or {}) as r:
        body = await r.read()
        return r.status, orjson.loads(body) if body else None, dict(r.headers)


async def page(base: str, who: dict[str, str]) -> None:
    auth = "Basic " + base64.b64encode(f"{WRITE}:".encode()).decode()
    call = {"type": "page", "messageId": uuid.uuid4().hex, "name": "/offers",
            "properties": {"path": "/offers"}, **who}
    async with aiohttp.ClientSession() as s, s.post(
            f"{base}/v1/page", data=orjson.dumps(call),
            headers={"Authorization": auth, "Content-Type": "application/json"}) as r:
        assert r.status == 200, await r.text()


def visitor(who: str, tok: str | None) -> tuple[str, dict[str, str]]:
    """The visitor path for `anon:…`/`user:…`, the token in the header."""
    kind, _, value = who.partition(":")
    name = "anonymousId" if kind == "anon" else "userId"
    return f"/v1/visitors/next-best-action?{name}={value}", \
        {"X-Kairos-Visitor-Token": tok} if tok else {}


async def check_reads(base: str, a: str, b: str) -> None:
    """Visitor `a` and `b` (identifiers) each have an offer: nobody but them, or a read key,
    reads it; the contact ids are keyed, so the unkeyed ones name nobody."""
    basic = {"Authorization": "Basic " + base64.b64encode(f"{WRITE}:".encode()).decode()}
    bearer = {"Authorization": f"Bearer {READ}"}
    mine = contact_id_for(a, ID_KEY)

    status, own, _ = await get(base, *visitor(a, token(a)))
    assert (status, own["action"], own["contact_id"]) == (200, "offer", mine)
    status, by_key, _ = await get(base, f"/v1/contacts/{mine}/next-best-action", bearer)
    assert (status, by_key) == (200, own)

    # A write key reads nothing, by contact id or as a visitor.
    status, body, _ = await get(base, f"/v1/contacts/{mine}/next-best-action", basic)
    assert (status, body["code"]) == (401, "unauthorized")
    assert "a write key cannot read" in body["message"]
    status, body, _ = await get(base, visitor(a, None)[0], basic)
    assert (status, body["code"]) == (401, "missing_token")
    # An id computed the old way: refused without a read key, and it names nobody with one.
    legacy = contact_id_for(a)
    assert legacy != mine
    status, body, headers = await get(base, f"/v1/contacts/{legacy}/next-best-action")
    assert (status, body["code"]) == (401, "unauthorized")
    assert headers["WWW-Authenticate"] == 'Bearer realm="kairos"'
    status, body, _ = await get(base, f"/v1/contacts/{legacy}/next-best-action", bearer)
    assert (status, body["code"]) == (404, "not_found")
    # A's token does not open B's action; an expired, a malformed or no token opens nothing.
    path_b, _ = visitor(b, None)
    status, body, _ = await get(base, path_b, {"X-Kairos-Visitor-Token": token(a)})
    assert (status, body["code"]) == (401, "bad_token")
    status, body, headers = await get(base, *visitor(a, token(a, ttl=-5)))
    assert (status, body["code"]) == (401, "expired_token")
    status, body, _ = await get(base, *visitor(a, "not-a-token"))
    assert (status, body["code"]) == (401, "malformed_token")
    status, body, _ = await get(base, *visitor(a, None))
    assert (status, body["code"]) == (401, "missing_token")
    # B's own token, in the query this time, gives B's own action.
    status, theirs, _ = await get(base, f"{path_b}&token={token(b)}")
    assert (status, theirs["contact_id"]) == (200, contact_id_for(b, ID_KEY))
    # The site's origin may read the answers (a 401 too); another origin gets no CORS grant.
    path_a, tok_a = visitor(a, token(a))
    status, _, headers = await get(base, path_a, {**tok_a, "Origin": ORIGIN})
    assert (status, headers.get("Access-Control-Allow-Origin")) == (200, ORIGIN)
    status, _, headers = await get(base, path_a, {"Origin": ORIGIN})
    assert (status, headers.get("Access-Control-Allow-Origin")) == (401, ORIGIN)
    status, _, headers = await get(base, path_a, {"Origin": ORIGIN}, method="OPTIONS")
    assert status == 204
    assert headers["Access-Control-Allow-Headers"] == "X-Kairos-Visitor-Token"
    status, _, headers = await get(base, path_a, {**tok_a, "Origin": "https://evil.example"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[str]:
    env = {**os.environ, **ENV, "KAIROS_RULES_DIR": str(offer_rules(tmp_path))}
    proc, url = kairos_run_http(env, "--data-dir", str(tmp_path / "state"))
    try:
        yield url
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"contact ids can be computed" not in err  # a key is set: no such warning


def test_the_embedded_collector_shows_a_visitor_only_their_own_action(embedded: str) -> None:
    async def go() -> None:
        await page(embedded, {"anonymousId": "va"})
        await page(embedded, {"userId": "vb"})
        await check_reads(embedded, "anon:va", "user:vb")

    asyncio.run(go())


def test_the_kafka_collector_shows_a_visitor_only_their_own_action(
        kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker", KAIROS_CONTACT_ID_KEY=ID_KEY,
                    KAIROS_RULES_DIR=str(offer_rules(tmp_path))).start()
    settings = Settings.from_env({**worker.env, **ENV, "KAIROS_REDIS_URL": redis_url})

    async def go() -> None:
        redis = Redis.from_url(redis_url)
        sink = KafkaSink(settings)
        await sink.start()
        server = TestServer(collector_app(sink, collector_config(settings), RedisWeb(redis)),
                            host="127.0.0.1")
        await server.start_server()
        stop = asyncio.Event()
        connector = asyncio.create_task(connect(settings, ["web"], stop))
        base = str(server.make_url("")).rstrip("/")
        try:
            await page(base, {"anonymousId": "ka", "userId": "kb"})  # kb's browser
            await page(base, {"anonymousId": "kc"})
            async with asyncio.timeout(90):  # worker, actions topic, connector, Redis
                while (await get(base, *visitor("anon:kc", token("anon:kc"))))[0] != 200 or \
                        (await get(base, *visitor("user:kb", token("user:kb"))))[0] != 200:
                    await asyncio.sleep(0.3)
            await check_reads(base, "anon:kc", "user:kb")
            # kb's browser names kb's contact, through the identity mirror in Redis.
            status, body, _ = await get(base, *visitor("anon:ka", token("anon:ka")))
            assert (status, body["contact_id"]) == (200, contact_id_for("user:kb", ID_KEY))
            assert await redis.get(visitor_key("user:kb")) == \
                contact_id_for("user:kb", ID_KEY).encode()
        finally:
            stop.set()
            await connector
            await server.close()
            await sink.stop()
            await redis.aclose()

    try:
        asyncio.run(go())
    finally:
        worker.stop()
