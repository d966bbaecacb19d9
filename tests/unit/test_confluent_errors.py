"""librdkafka's errors become the aiokafka errors faults.py classifies: a fenced producer ends the
worker, a timeout or a broker-side code is ridden out."""

from __future__ import annotations

import confluent_kafka as ck
import pytest
from aiokafka.errors import (
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    ProducerFenced,
    TopicAuthorizationFailedError,
)

from engine.runtime.kafka.confluent import Ack, error_of
from engine.runtime.kafka.faults import classify, retriable


@pytest.mark.parametrize("code", [ck.KafkaError._FENCED, ck.KafkaError.PRODUCER_FENCED,
                                  ck.KafkaError.INVALID_PRODUCER_EPOCH])
def test_a_fenced_producer_ends_the_worker(code: int) -> None:
    err = error_of(ck.KafkaError(code))
    assert isinstance(err, ProducerFenced)
    fatal = classify(err)
    assert fatal is not None and "KAIROS_DATA_DIR" in str(fatal)


def test_a_refused_topic_ends_the_worker_with_its_fix() -> None:
    err = error_of(ck.KafkaError(ck.KafkaError.TOPIC_AUTHORIZATION_FAILED))
    assert isinstance(err, TopicAuthorizationFailedError)
    assert "grant its principal" in str(classify(err))


@pytest.mark.parametrize(("code", "kind"), [
    (ck.KafkaError._MSG_TIMED_OUT, KafkaTimeoutError),
    (ck.KafkaError.NOT_LEADER_FOR_PARTITION, NotLeaderForPartitionError),
])
def test_passing_errors_are_ridden_out(code: int, kind: type[Exception]) -> None:
    err = error_of(ck.KafkaError(code))
    assert isinstance(err, kind)
    assert classify(err) is None and retriable(err)


def test_an_ack_raises_its_delivery_error() -> None:
    ack = Ack()
    ack.done(ck.KafkaError(ck.KafkaError._MSG_TIMED_OUT), None)
    assert ack.settled
    with pytest.raises(KafkaTimeoutError, match=r"(?i)timed out"):
        ack.result()
