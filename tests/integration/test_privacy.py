"""Right of access and to be forgotten against a running worker group, its changelogs and Redis."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from redis import Redis

from engine.model import actions as action_codec
from engine.ops import explain
from engine.testing.kafka import Worker, consume, produce
from tests.helpers import ROOT
from tests.integration.journey import T0, segment

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


def kairos(w: Worker, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT,
                          env={**w.env, **env}, capture_output=True, text=True, timeout=120)


def test_a_contact_is_shown_then_forgotten_everywhere(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    w = Worker(kafka_bootstrap, tmp_path, KAIROS_REDIS_URL=redis_url).start()
    user = b"user-gdpr"
    try:
        produce(w.bootstrap, [
            (w.topics["clickstream"], user, segment(
                "identify", "g-id", T0, userId="user-gdpr", anonymousId="anon-gdpr",
                traits={"email": "gdpr@example.com", "phone": "+33600000001"})),
            (w.topics["clickstream"], user, segment(
                "track", "g-o1", T0 + 10, userId="user-gdpr", event="Order Completed",
                properties={"products": [{"category": "books"}]})),
        ])
        first = consume(w.bootstrap, w.topics["actions"], lambda vs: len(vs) >= 1, 60)
        contact = action_codec.decode(first[0]).contact_id
        redis = Redis.from_url(redis_url)
        redis.set(f"kairos:nba:{contact}", first[0])  # what the web channel keeps for the site

        shown = kairos(w, "contacts", "show", "email:gdpr@example.com", "--kafka")
        assert shown.returncode == 0, shown.stderr
        doc = orjson.loads(shown.stdout)
        assert doc["contact"]["contact_id"] == contact
        assert doc["contact"]["traits"]["phone"] == "+33600000001"
        assert doc["identity_records"] == {
            "user:user-gdpr": contact, "email:gdpr@example.com": contact,
            "anon:anon-gdpr": contact}

        forgot = kairos(w, "contacts", "forget", "user:user-gdpr", "--kafka")
        assert forgot.returncode == 0, forgot.stderr
        assert orjson.loads(forgot.stdout)["redis_keys_deleted"] == 1
        assert redis.exists(f"kairos:nba:{contact}") == 0
        identity, contacts = explain.from_changelogs(w.bootstrap, w.prefix)
        deadline = time.monotonic() + 30
        while contacts(contact) is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        # Tombstones on both changelogs: compaction removes the data from the broker as well.
        assert contacts(contact) is None
        for ident in ("user:user-gdpr", "email:gdpr@example.com", "anon:anon-gdpr"):
            assert identity(ident) is None, ident
        assert kairos(w, "contacts", "show", "user:user-gdpr", "--kafka").returncode == 1

        # The same person comes back: a new contact with no history (a first purchase again),
        # reachable once they give their address again.
        produce(w.bootstrap, [
            (w.topics["clickstream"], user, segment(
                "identify", "g-id2", T0 + 19, userId="user-gdpr",
                traits={"email": "gdpr@example.com"})),
            (w.topics["clickstream"], user, segment(
                "track", "g-o2", T0 + 20, userId="user-gdpr", event="Order Completed",
                properties={"products": [{"category": "books"}]}))])
        later = consume(w.bootstrap, w.topics["actions"], lambda vs: len(vs) >= 2, 60)
        assert [action_codec.decode(v).trigger_event_id for v in later] == ["g-o1", "g-o2"]
        assert b"gdpr@example.com" not in w.log_path.read_bytes()  # nor in the worker's log
        redis.close()
    finally:
        w.stop()
