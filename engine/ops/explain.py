"""`kairos explain CONTACT`: why a contact got (or did not get) each recent action.

Works in both runtimes: the embedded runtime's RocksDB directory, or, for Kafka workers, the
tables' changelog topics (read, never written, so it is safe against a running group).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from engine.errors import MissingData
from engine.model import state as state_codec
from engine.model.state import ContactState, Touch
from engine.topics import Table, changelog

Lookup = Callable[[str], bytes | None]


def resolve(who: str, identity: Lookup, contacts: Lookup) -> ContactState | None:
    """A contact by id (`c…`) or identifier (`user:u1`, `email:…`), following merges."""
    key: str | None = who
    if ":" in who:
        record = identity(who)
        key = record.decode() if record is not None else None
    for _ in range(32):
        if key is None:
            return None
        raw = contacts(key)
        if raw is None:
            return None
        st = state_codec.decode(raw)
        if st.merged_into is None:
            return st
        key = st.merged_into
    return None


def render(st: ContactState) -> str:
    lines = [
        f"contact {st.contact_id}",
        f"  identifiers: {', '.join(st.identifiers) or '-'}",
        f"  stage {st.stage}, lifecycle {st.lifecycle}, time zone {st.timezone or 'UTC'}, "
        f"preferred channel {st.preferred_channel or '-'}",
        "  consent: " + (", ".join(
            f"{key}={'yes' if c.granted else 'no'} ({c.source}, {_t(c.at)})"
            for key, c in st.consent.items()
        ) or "none recorded (channel defaults apply)"),
        "  addresses: " + (", ".join(
            f"{ch} {a.value}" + (f" ({a.device})" if a.device else "")
            for ch, a in st.addresses.items()
        ) or "-"),
    ]
    if st.account:
        traits = ", ".join(f"{k}={v}" for k, v in list(st.account.traits.items())[:10])
        lines.append(f"  account: {st.account.group_id} ({_t(st.account.at)})"
                     + (f": {traits}" if traits else ""))
    if st.locale or st.campaign:
        lines.append(f"  locale {st.locale or '-'}, campaign {_touch(st.campaign)}, "
                     f"first campaign {_touch(st.first_campaign)}")
    if st.suppressed:
        held = ", ".join(f"{c} ({w})" for c, w in st.suppressed.items())
        lines.append(f"  hard suppressions: {held}")
    if st.timers:
        pending = ", ".join(f"{t.rule_id}/{t.name} at {_t(t.due)}" for t in st.timers)
        lines.append(f"  pending: {pending}")
    if st.refused:
        lines.append("  identity refused (oldest first):")
        for r in st.refused:
            with_ = f" with {r.other}" if r.other else ""
            lines.append(f"    {_t(r.at)}  {r.identifier}{with_}: {r.reason}")
    lines.append("  recent decisions (oldest first):")
    for d in st.decisions:
        where = f" on {d.channel}" if d.channel else ""
        mode = " (shadow)" if d.shadow else ""  # would have been decided, never delivered
        if d.fallback_from:  # offered because the action failed for good on that channel
            where += f" (fallback from {d.fallback_from})"
        if d.cooldown_key:  # the key its cool-down holds on
            where += f" (key {d.cooldown_key})"
        lines.append(
            f"    {_t(d.at)}  {d.outcome:<9} {d.rule_id}{mode} -> {d.action}{where}: {d.reason}"
            f"  [trigger {d.trigger_event_id}{', action ' + d.action_id if d.action_id else ''}]"
        )
    if not st.decisions:
        lines.append("    none")
    return "\n".join(lines)


def _touch(touch: Touch | None) -> str:
    if touch is None:
        return "-"
    c = touch.campaign
    utm = "/".join(v or "-" for v in (c.name, c.source, c.medium, c.term, c.content))
    return f"{utm} ({_t(touch.at)})"


def _t(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def from_directory(data_dir: Path) -> tuple[Lookup, Lookup, Callable[[], None]]:
    """Lookups over an embedded runtime's RocksDB state (read-only: a running engine is fine),
    or over every job's state a partitioned `kairos replay --data-dir` left there (a contact
    and its identifiers are in one job's only, so the first that has a key answers)."""
    from engine.ops.partition import job_dirs
    from engine.storage import RocksStore

    if not any((d / "contacts").is_dir() for d in job_dirs(data_dir)):
        raise MissingData(f"{data_dir}: no engine state here; give --data-dir the directory of a "
                          "`kairos run` or `kairos replay --data-dir` (or --kafka for a worker "
                          "group)")
    stores = [(RocksStore(d / "identity", read_only=True), RocksStore(d / "contacts",
                                                                       read_only=True))
              for d in job_dirs(data_dir)]

    def first(table: int) -> Lookup:
        def get(key: str) -> bytes | None:
            return next((v for pair in stores if (v := pair[table].get(key)) is not None), None)
        return get

    def close() -> None:
        for identity, contacts in stores:
            identity.close()
            contacts.close()

    return first(0), first(1), close


def from_changelogs(bootstrap: str, app_id: str) -> tuple[Lookup, Lookup]:
    """Lookups that scan a worker group's table changelogs for the latest value of a key."""

    def lookup(table: Table) -> Lookup:
        return lambda key: asyncio.run(_latest(bootstrap, changelog(app_id, table), key))

    return lookup("identity"), lookup("contacts")


async def _latest(bootstrap: str, topic: str, key: str) -> bytes | None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for p in described.get("partitions", ())]
    if not tps:
        return None
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")  # as the seek: see stream.py
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        wanted, found = key.encode(), None
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            for tp, records in (await consumer.getmany(*pending, timeout_ms=1000)).items():
                for r in records:
                    if r.key == wanted:
                        found = r.value
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return found
    finally:
        await consumer.stop()


def as_json(st: ContactState) -> bytes:
    return msgspec.json.encode(st)
