"""Broker loss at the collector: it answers 503 (retry) while the broker is down, never 200 for
what it could not store, and recovers by itself when the broker returns. (Workers riding out
broker faults: test_broker_faults.py.)"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from engine.testing.kafka import consume, free_port
from tests.helpers import ROOT

pytestmark = pytest.mark.kafka
KAFKA = ROOT / "deploy" / "kafka" / "kafka.sh"


def broker(action: str, port: int) -> None:
    env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(free_port())}
    subprocess.run([str(KAFKA), action], env=env, check=True, capture_output=True, timeout=180)


def post(port: int, n: int) -> int:
    body = orjson.dumps({"messageId": f"loss-{n}", "userId": "u1", "event": "Product Viewed",
                         "timestamp": "2026-11-02T10:00:00Z"})
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/track", data=body, headers={
        "Authorization": "Basic " + base64.b64encode(b"wk:").decode(),
        "Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(req, timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_collector_answers_503_without_a_broker_and_recovers(
    kafka_bootstrap: str, tmp_path: Path,
) -> None:
    kport, hport = free_port(), free_port()
    broker("up", kport)
    env = {**os.environ, "KAIROS_BROKER": f"kafka://127.0.0.1:{kport}", "KAIROS_WRITE_KEYS": "wk",
           "KAIROS_TOPIC_CLICKSTREAM": "loss.clickstream"}
    log = (tmp_path / "collect.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "collect", "--http",
                             f"127.0.0.1:{hport}"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{hport}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        assert post(hport, 1) == 200
        broker("down", kport)
        statuses = [post(hport, n) for n in (2, 3)]
        assert statuses == [503, 503], (tmp_path / "collect.log").read_text()[-2000:]
        broker("up", kport)
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline and status != 200:
            status = post(hport, 4)  # the sender's retry
        assert status == 200
        values = consume(f"127.0.0.1:{kport}", "loss.clickstream",
                         lambda vs: len(vs) >= 2, timeout=30)
        ids = [orjson.loads(v)["messageId"] for v in values]
        assert "loss-1" in ids and "loss-4" in ids
    finally:
        proc.terminate()
        proc.wait(20)
        broker("down", kport)
