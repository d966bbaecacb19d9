"""Tracked SMS and push links on the real collector: a signed redirect that credits the click
to its action, and refuses forged, foreign and expired tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aiohttp
import msgspec
import orjson
import pytest

from connectors.tracked_links import sign_link_token
from tests.integration.edge import LINK_SECRET, Collector, call, post

TARGET = "https://shop.example.com/cart?sku=k-1"


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def get(url: str) -> tuple[int, str, dict[str, object]]:
    """Status, Location header and JSON body (empty on a redirect), redirects not followed."""
    async def go() -> tuple[int, str, dict[str, object]]:
        async with aiohttp.ClientSession() as s, s.get(url, allow_redirects=False) as r:
            body = await r.read()
            return r.status, r.headers.get("Location", ""), orjson.loads(body) if r.status >= 400 \
                else {}

    return asyncio.run(go())


def test_a_tracked_link_redirects_and_credits_a_click_to_its_action(collector: Collector) -> None:
    url = f"{collector.url}/v1/track"
    assert post(f"{collector.url}/v1/identify", orjson.dumps(call(
        type="identify", userId="tl1", traits={"email": "tl1@example.com",
                                               "consent": {"email": True}})))[0] == 200
    assert post(url, orjson.dumps(call(userId="tl1", event="Order Completed",
                                       properties={"products": [{"category": "books"}]})))[0] == 200
    [action] = [a for a in collector.actions if a.action == "welcome-books"]
    secret = LINK_SECRET
    token = sign_link_token(secret, action, TARGET, time.time() + 60)
    assert get(f"{collector.url}/v1/r/{token}")[:2] == (302, TARGET)
    st = collector.contact("user:tl1")
    assert st.outcomes[f"{action.action}|{action.channel}"].positive == 1
    assert [h.fate for h in st.history if h.action_id == action.action_id] == ["engaged"]

    other = msgspec.structs.replace(action, action_id="a-someone-else")
    forged = sign_link_token("not the secret at all", other, TARGET, time.time() + 60)
    retargeted = token.split(".")[0][:-2] + "xx." + token.split(".")[1]
    expired = sign_link_token(secret, action, TARGET, time.time() - 1)
    for bad, why in ((forged, "signature does not match"),
                     (retargeted, "signature does not match"),
                     (expired, "expired"), ("garbage", "not a link token")):
        status, location, body = get(f"{collector.url}/v1/r/{bad}")
        assert (status, location) == (404, "") and why in str(body["message"])
    assert collector.contact("user:tl1").outcomes[
        f"{action.action}|{action.channel}"].positive == 1
