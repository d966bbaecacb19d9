"""Fixtures the integration modules share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.testing.kafka import Worker


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One `kairos worker` with the shipped rules for a whole module (a module that needs a
    worker of its own kind defines its own `worker`)."""
    w = Worker(kafka_bootstrap, tmp_path_factory.mktemp("worker")).start()
    yield w
    w.stop()
