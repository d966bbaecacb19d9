"""RedisGate: a Redis call waits out an outage, and gives up only past its limit."""

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from connectors.redis_gate import RedisGate, RedisUnavailable


def flaky(failures: int) -> object:
    calls = {"n": 0}

    async def op() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise RedisConnectionError("Connection refused")
        return "OK"

    return op


def test_a_call_waits_for_redis_and_goes_on_when_it_answers() -> None:
    gate = RedisGate(limit=30)

    async def go() -> str:
        return await gate.call(flaky(3))  # type: ignore[arg-type]

    assert asyncio.run(go()) == "OK"
    assert (gate.up, gate.waiting, gate.errors, gate.outages) == (True, 0, 3, 1)


def test_past_its_limit_the_wait_ends_with_what_to_check() -> None:
    gate = RedisGate(limit=0.3)

    async def go() -> str:
        return await gate.call(flaky(10**6))  # type: ignore[arg-type]

    with pytest.raises(RedisUnavailable, match=r"Redis unreachable for 0s .*KAIROS_REDIS_URL"):
        asyncio.run(go())
    assert gate.up is False and gate.waiting == 0
