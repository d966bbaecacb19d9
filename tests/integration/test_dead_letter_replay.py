"""Dead letters on the real broker keep what a replay needs, and `kairos dead-letters replay`
puts the originals back: same key, headers, value bytes and partition. kcat's raw records."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.model import actions as action_codec
from engine.model import deadletter
from engine.model.deadletter import DeadLetter
from engine.testing.kafka import ROOT, Worker, consume
from tests.integration.journey import T0, phase_one, segment
from tests.integration.records import read_records, send_records

pytestmark = pytest.mark.kafka


@pytest.fixture
def worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(kafka_bootstrap, tmp_path).start()
    yield w
    w.stop()


def letters(w: Worker, n: int) -> list[DeadLetter]:
    found = [deadletter.decode(v) for v in
             consume(w.bootstrap, w.topics["dead"], lambda vs: len(vs) >= n)]
    assert len(found) == n, w.log_tail()
    return found


def kairos(w: Worker, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=w.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def triggered(w: Worker, event_id: str) -> bool:
    values = consume(w.bootstrap, w.topics["actions"],
                     lambda vs: any(event_id in v.decode() for v in vs))
    return any(action_codec.decode(v).trigger_event_id == event_id for v in values)


def test_replay_puts_the_originals_back_keyed_with_headers_in_their_partition(
    worker: Worker,
) -> None:
    topic = worker.topics["clickstream"]
    garbage, odd_key = b"\xff\xfe not json", b"\x80\x81key"
    headers = [("trace", b"t-1"), ("bin", b"\x00\xff"), ("none", None)]
    bad = [(odd_key, garbage, headers, None),
           (None, b"{oops", [], 2),  # no key: replayed to the partition it was read from
           (b"tomb", None, [], None),  # a tombstone
           (b"", b"", [("empty", b"")], 1)]
    sent = send_records(worker.bootstrap, [
        *((topic, k, v, h, p) for k, v, h, p in bad),
        (topic, b"user-sv", segment("track", "sv-1", T0, userId="user-sv"), [], None),
    ])
    by_place = {(ltr.partition, ltr.offset): ltr for ltr in letters(worker, 5)}
    odd, keyless, tomb, empty, schema = (by_place[(m.partition, m.offset)] for m in sent)
    assert odd.original() == garbage and odd.original_key() == odd_key and odd.key is None
    assert odd.original_headers() == headers and odd.reason.startswith("invalid JSON")
    assert (odd.timestamp, odd.timestamp_type) == (sent[0].timestamp, 0)
    assert keyless.original_key() is None and keyless.partition == 2
    assert tomb.value_null and tomb.original() is None and tomb.original_key() == b"tomb"
    assert tomb.reason.startswith("null value")
    assert not empty.value_null and empty.original() == b"" and empty.key == ""
    assert empty.original_headers() == [("empty", b"")]
    assert schema.reason.startswith("schema violation")

    listed = kairos(worker, "dead-letters", "list")
    assert "5 of 5 dead letters" in listed and "invalid JSON" in listed, listed
    dry = kairos(worker, "dead-letters", "replay", "--reason", "invalid JSON", "--dry-run")
    assert "read 5, matched 3, would produce 3" in dry, dry
    out = kairos(worker, "dead-letters", "replay", "--reason", "invalid JSON", "--source", topic)
    assert "read 5, matched 3, produced 3" in out and f"{topic}: 3" in out, out
    out = kairos(worker, "dead-letters", "replay", "--reason", "null value", "--limit", "1")
    assert "matched 1, produced 1" in out, out

    records = read_records(worker.bootstrap, topic, lambda rs: len(rs) >= 9)
    assert len(records) == 9  # the dry run produced nothing, nor did the schema violation
    first = {(m.partition, m.offset) for m in sent}
    got = sorted(((r.partition, r.key, r.value, list(r.headers)) for r in records
                  if (r.partition, r.offset) not in first), key=repr)
    want = sorted(((m.partition, k, v, h) for m, (k, v, h, _) in zip(sent, bad, strict=False)),
                  key=repr)
    assert got == want
    assert worker.proc is not None and worker.proc.poll() is None


def kcat(w: Worker, lines: bytes, *flags: str) -> None:
    binary = shutil.which("kcat")
    assert binary, "kcat is not on PATH: `make test` installs it (the kcat package)"
    subprocess.run([binary, "-P", "-b", w.bootstrap, "-t", w.topics["clickstream"], "-K", "|",
                    *flags], input=lines, check=True, timeout=60)


def test_kcat_raw_records_good_ones_decide_bad_ones_are_dead_letters(worker: Worker) -> None:
    kcat(worker, b"".join(k + b"|" + v + b"\n" for _, k, v in phase_one("kc")))
    kcat(worker, b"gk|\xff\xfegarbage\n", "-H", "trace=abc")
    kcat(worker, b"ek|\n")
    kcat(worker, b"nk|\n", "-Z")
    kcat(worker, b"".join(k + b"|" + v + b"\n" for _, k, v in phase_one("kd")))
    assert triggered(worker, "kc-o1") and triggered(worker, "kd-o1"), worker.log_tail()
    by_key = {ltr.key: ltr for ltr in letters(worker, 3)}
    garbage, empty, null = by_key["gk"], by_key["ek"], by_key["nk"]
    assert garbage.original() == b"\xff\xfegarbage" and garbage.reason.startswith("invalid JSON")
    assert garbage.original_headers() == [("trace", b"abc")]
    assert empty.original() == b"" and not empty.value_null
    assert "truncated" in empty.reason
    assert null.value_null and null.reason.startswith("null value")
    for ltr in (garbage, empty, null):
        assert ltr.topic == worker.topics["clickstream"] and ltr.offset is not None
        assert ltr.partition is not None and ltr.timestamp is not None
    assert worker.proc is not None and worker.proc.poll() is None  # never crashed
