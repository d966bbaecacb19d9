"""CRM / call-centre tasks on a Kafka topic, for CRMs that consume Kafka (else: HttpProvider)."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from connectors.delivery import Transient
from engine.model import actions as action_codec
from engine.model.actions import Action


class CrmTopic:
    name = "crm"

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer, self.topic = producer, topic
        self.provider = f"kafka:{topic}"
        self.resend_safe = False  # a second record would be a second task

    async def send(self, action: Action) -> None:
        try:
            await self.producer.send_and_wait(self.topic, action_codec.encode(action),
                                              key=action.contact_id.encode())
        except KafkaError as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc
