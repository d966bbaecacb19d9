"""Which broker errors a worker rides out, and which end it with what to fix."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    NotLeaderForPartitionError,
    ProducerFenced,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)

from engine.config import Settings
from engine.errors import BrokerUnreachable, CommitError
from engine.runtime.kafka import faults
from engine.runtime.kafka.faults import BrokerProbe, classify, retriable


@pytest.mark.parametrize("exc", [
    LeaderNotAvailableError(), NotLeaderForPartitionError(), RequestTimedOutError(),
    KafkaConnectionError("Unable to bootstrap"), KafkaTimeoutError("batch expired"),
    TimeoutError(), ConnectionRefusedError(),
])
def test_a_passing_broker_fault_is_ridden_out(exc: BaseException) -> None:
    assert classify(exc) is None and retriable(exc)


def test_a_commit_refused_after_a_failed_one_is_ridden_out_too() -> None:
    try:
        try:
            raise LeaderNotAvailableError()
        except LeaderNotAvailableError as first:
            raise CommitError("an earlier commit failed") from first
    except CommitError as exc:
        assert classify(exc) is None and retriable(exc)


@pytest.mark.parametrize(("exc", "fix"), [
    (TopicAuthorizationFailedError(), r"grant its principal read and write on the input"),
    (GroupAuthorizationFailedError(), r"the group named by KAIROS_APP_ID"),
    (ProducerFenced("fenced"), r"each worker needs a data directory of its own"),
])
def test_what_no_wait_can_cure_ends_the_worker_saying_what_to_fix(
    exc: BaseException, fix: str
) -> None:
    wrapped = CommitError("an earlier commit failed")
    wrapped.__cause__ = exc
    fatal = classify(wrapped)
    assert fatal is not None
    with pytest.raises(type(fatal), match=fix):
        raise fatal


def test_a_bug_in_the_worker_is_neither_ridden_out_nor_mistaken_for_a_broker_fault() -> None:
    exc = KeyError("contacts")
    assert classify(exc) is None and not retriable(exc)


class _Producer:
    """Answers the probe's metadata question while `up`, and notes what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.up = True

    async def answer(self, topic: str) -> None:
        self.asked.append(topic)
        if not self.up:
            raise KafkaConnectionError("no broker")


def test_the_broker_probe_asks_for_one_topic_of_the_worker_and_notices_silence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(faults, "PROBE_EVERY", 0.01)
    settings = Settings(app_id="app", broker_timeout=0.2)
    producer = _Producer()

    async def probing() -> None:
        probe = BrokerProbe(settings, producer)
        probe.start()
        await asyncio.sleep(0.1)
        probe.check()  # answered: no complaint
        producer.up = False
        await asyncio.sleep(0.4)
        probe.stop()
        with pytest.raises(BrokerUnreachable, match="no answer from the broker"):
            probe.check()

    asyncio.run(probing())
    assert producer.asked and set(producer.asked) == {settings.topics.internal["contacts"]}
