"""Shared fixtures: the real Kafka broker and Redis server that `make test` starts.

Outside `make test`, tests needing them are skipped unless KAIROS_REQUIRE_SERVICES=1, in which
case a missing service is a failure, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from tests.helpers import unavailable

# Property tests check what holds, not how fast: on a shared, loaded machine hypothesis's
# default 200 ms deadline per example fails tests whose code is right.
settings.register_profile("kairos", deadline=None)
settings.load_profile("kairos")


def _service(var: str, what: str) -> str:
    value = os.environ.get(var)
    if not value:
        unavailable(f"{var} not set: run through `make test`, which starts the real {what}")
    return value


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return _service("KAIROS_TEST_KAFKA", "Kafka broker")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _service("KAIROS_TEST_REDIS", "Redis server")
