"""A contact's rights: access (everything held on them, as JSON) and erasure (to be forgotten).

`kairos contacts show ID` exports the contact's state and the identity records of its
identifiers. `kairos contacts forget ID` erases them: in the Kafka runtime it publishes an
erasure request on `KAIROS_TOPIC_ERASURE`, which the worker owning the contact applies through
the same keyed path as events (state deleted, identity records deleted, tombstones on both
changelogs, so compaction removes the data from the broker too), and deletes the contact's keys
in Redis; in the embedded runtime it applies the request to the local tables directly. Later
events for the old identifiers start a contact with no history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import orjson

from engine.config import Settings
from engine.keys import latest_action_key
from engine.model.state import ContactState
from engine.ops import explain
from engine.ops.explain import Lookup


@contextmanager
def lookups(settings: Settings, kafka: bool, data_dir: Path | None) -> Iterator[tuple[Lookup,
                                                                                     Lookup]]:
    """Identity and contact lookups over the worker group's changelogs or a local directory."""
    if kafka:
        yield explain.from_changelogs(settings.bootstrap, settings.app_id)
        return
    identity, contacts, close = explain.from_directory(data_dir or settings.data_dir / "embedded")
    try:
        yield identity, contacts
    finally:
        close()


def export(state: ContactState, identity: Lookup) -> bytes:
    """Everything held on the contact: its state, and where each of its identifiers points."""
    links = {}
    for ident in state.identifiers:
        record = identity(ident)
        links[ident] = record.decode() if record is not None else None
    doc: dict[str, Any] = {"contact": msgspec.to_builtins(state), "identity_records": links}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def erasure_request(who: str) -> bytes:
    return orjson.dumps({"identifier": who} if ":" in who else {"contact_id": who})


async def request_erasure(settings: Settings, who: str, contact_id: str | None) -> int:
    """Publish the request (acknowledged by the broker) and delete the contact's Redis keys."""
    from aiokafka import AIOKafkaProducer
    from redis.asyncio import Redis

    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all",
                                enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic_erasure, erasure_request(who),
                                     key=who.encode())
    finally:
        await producer.stop()
    if contact_id is None:
        return 0
    redis = Redis.from_url(settings.redis_url)
    try:
        deleted: int = await redis.delete(latest_action_key(contact_id))
    finally:
        await redis.aclose()
    return deleted


def forget_embedded(settings: Settings, data_dir: Path, who: str) -> None:
    """Apply an erasure to an embedded runtime's tables (stopped: RocksDB allows one writer)."""
    from engine.pipeline import Pipeline
    from engine.runtime.embedded import EmbeddedRuntime
    from engine.sdk.ruleset import RuleSet

    runtime = EmbeddedRuntime(Pipeline(RuleSet.load(settings.rules_dir), settings.load_policy()),
                              data_dir=data_dir)
    try:
        runtime.forget(who)
    finally:
        runtime.close()


def run(settings: Settings, action: str, who: str, kafka: bool, data_dir: Path | None) -> int:
    """`kairos contacts show|forget`: 0 when done, 1 when the contact is unknown."""
    import sys

    with lookups(settings, kafka, data_dir) as (identity, contacts):
        state = explain.resolve(who, identity, contacts)
        body = export(state, identity) if state is not None else None
    if action == "show":
        if body is None:
            print(f"error: no contact {who!r}", file=sys.stderr)
            return 1
        sys.stdout.buffer.write(body + b"\n")
        return 0
    contact_id = state.contact_id if state is not None else None
    if kafka:
        redis_keys = asyncio.run(request_erasure(settings, contact_id or who, contact_id))
        print(orjson.dumps({"erasure_requested": contact_id or who,
                            "topic": settings.topic_erasure,
                            "redis_keys_deleted": redis_keys}).decode())
        return 0
    if state is None:
        print(f"error: no contact {who!r}", file=sys.stderr)
        return 1
    forget_embedded(settings, data_dir or settings.data_dir / "embedded", state.contact_id)
    print(orjson.dumps({"forgotten": state.contact_id,
                        "identifiers": list(state.identifiers)}).decode())
    return 0
