"""Fallback end to end on the real broker and Redis: an SMS provider that rejects the number for
good leads, through the connector's outcome and the worker, to the push action the rule allows,
delivered to the push provider."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import pytest

from engine.model import actions as action_codec
from engine.model.events import iso
from engine.testing.kafka import Worker, consume, produce
from tests.integration.servers import HttpServer
from tests.integration.test_end_to_end import spawn, stop, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

RULE = '''
from engine.sdk import Context, Proposal, on, rule


@rule("come-back", triggers=[on("track", "Cart Abandoned")], description="sms, else push")
def come_back(ctx: Context) -> Proposal:
    return Proposal(action="come-back", channels=("sms", "push"), payload={"sku": "k-1"})
'''
TEMPLATES = {"sms.txt": "Your cart misses you: {{ action.payload.sku }}",
             "push.toml": 'title = "Your cart"\nbody = "{{ action.payload.sku }} is waiting"\n'}
POLICY = '''
global_daily_cap = 10
[channels.sms]
consent_default = true
quiet_hours = ["00:00", "00:00"]
[channels.push]
consent_default = true
quiet_hours = ["00:00", "00:00"]
'''


def test_a_rejected_number_falls_back_to_push(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "come_back.py").write_text(RULE)
    for name, text in TEMPLATES.items():  # what each channel sends (connectors/templates/)
        (rules / "templates" / "come-back").mkdir(parents=True, exist_ok=True)
        (rules / "templates" / "come-back" / name).write_text(text)
    (tmp_path / "policy.toml").write_text(POLICY)
    with HttpServer() as sms, HttpServer() as push:
        sms.respond = lambda n: 400  # "invalid number": permanent
        w = Worker(kafka_bootstrap, tmp_path / "w", KAIROS_RULES_DIR=str(rules),
                   KAIROS_POLICY=str(tmp_path / "policy.toml"), KAIROS_REDIS_URL=redis_url,
                   KAIROS_SMS_URL=sms.url + "/sms", KAIROS_PUSH_URL=push.url + "/push")
        w.start()
        connector = spawn(w, "connect", "sms", "push", KAIROS_CONNECT_METRICS_PORT="0")
        try:
            user = f"fb-{uuid.uuid4().hex[:6]}"
            now = time.time()
            calls = [
                {"type": "identify", "userId": user, "messageId": f"{user}-1",
                 "timestamp": iso(now), "traits": {"phone": "+33600000000"},
                 "context": {"device": {"token": f"tok-{user}", "type": "ios"}}},
                {"type": "track", "userId": user, "messageId": f"{user}-2",
                 "timestamp": iso(now + 1), "event": "Cart Abandoned"},
            ]
            produce(w.bootstrap, [(w.topics["clickstream"], user.encode(), orjson.dumps(c))
                                  for c in calls])
            wait_until(lambda: push.requests, 40, "the push fallback at the push provider")
            actions = [action_codec.decode(v) for v in consume(
                w.bootstrap, w.topics["actions"], lambda vs: len(vs) >= 2)]
        finally:
            stop(connector)
            w.stop()
    first, fallback = actions
    assert (first.channel, fallback.channel) == ("sms", "push")
    assert fallback.reason.startswith("fallback from sms: come-back")
    assert fallback.action_id != first.action_id and fallback.recipient == f"tok-{user}"
    [(path, headers, body)] = push.requests
    sent = orjson.loads(body)
    assert path == "/push" and headers["Idempotency-Key"] == fallback.action_id
    assert (sent["to"], sent["action"], sent["payload"]) == (f"tok-{user}", "come-back",
                                                             {"sku": "k-1"})
    assert len(sms.requests) == 1  # the rejected number was tried once, never again
