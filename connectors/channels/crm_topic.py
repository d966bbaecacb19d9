"""CRM / call-centre tasks on a Kafka topic, for CRMs that consume Kafka (else: HttpProvider).

A record is the action as JSON plus `task`: the fields its `crm.toml` template rendered."""

from __future__ import annotations

import msgspec
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from connectors.delivery import Transient
from connectors.templates import Library
from engine.model.actions import Action


class CrmTopic:
    name = "crm"

    def __init__(self, producer: AIOKafkaProducer, topic: str, templates: Library) -> None:
        self.producer, self.topic, self.templates = producer, topic, templates
        self.provider = f"kafka:{topic}"
        self.resend_safe = False  # a second record would be a second task

    async def send(self, action: Action) -> None:
        task = self.templates.content(action)
        record = orjson.dumps({**msgspec.to_builtins(action), "task": task})
        try:
            await self.producer.send_and_wait(self.topic, record,
                                              key=action.contact_id.encode())
        except KafkaError as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc
