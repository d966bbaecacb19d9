"""Which broker errors a worker rides out, and which end it with what to fix."""

from __future__ import annotations

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

from engine.errors import CommitError
from engine.runtime.kafka.faults import classify, retriable


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
