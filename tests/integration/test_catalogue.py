"""Catalogue triggers end to end: on the real broker (a worker with the shipped rules), and
through the collector's `POST /v1/catalogue` into the embedded engine."""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest

from engine.model import actions as action_codec
from engine.model.events import iso
from engine.testing.kafka import Worker, consume, produce
from tests.integration.edge import Collector, post
from tests.integration.test_end_to_end import wait_until


def consumed(w: Worker, topic: str) -> float:
    """How many input events the worker has consumed from `topic` (its metrics)."""
    text = urllib.request.urlopen(w.metrics_url(), timeout=2).read().decode()
    found = re.search(rf'^kairos_events_consumed\S*\{{topic="{re.escape(topic)}"\}} (\S+)$',
                      text, re.M)
    return float(found.group(1)) if found else 0.0


def people(prefix: str, now: float) -> list[dict[str, object]]:
    """Three reachable users: the first two view the item, the third another one."""
    calls: list[dict[str, object]] = []
    for i, item in enumerate(("tent", "tent", "stove")):
        user = f"{prefix}-{i}"
        calls += [
            {"type": "identify", "userId": user, "messageId": f"{user}-id", "timestamp": iso(now),
             "traits": {"email": f"{user}@example.com", "consent": {"email": True}}},
            {"type": "track", "userId": user, "messageId": f"{user}-view", "event": "Product Viewed",
             "timestamp": iso(now + 1), "properties": {"product_id": f"{prefix}-{item}"}},
        ]
    return calls


@pytest.mark.kafka
def test_a_price_drop_on_the_catalogue_topic_reaches_the_two_who_viewed_the_item(
    worker: Worker,
) -> None:
    price_drop_reaches_the_viewers(worker)


@pytest.mark.kafka
def test_the_faust_runtime_fans_a_price_drop_out_alike(kafka_bootstrap: str,
                                                       tmp_path: Path) -> None:
    w = Worker(kafka_bootstrap, tmp_path, runtime="faust").start()
    try:
        price_drop_reaches_the_viewers(w)
    finally:
        w.stop()


def price_drop_reaches_the_viewers(w: Worker) -> None:
    """Three contacts, two viewed the item: its price drop gives those two an action each."""
    prefix, now = f"cat-{uuid.uuid4().hex[:6]}", time.time()
    item = f"{prefix}-tent"

    def catalogue(price: float, at: float) -> tuple[str, bytes, bytes]:
        record = {"item_id": item, "price": price, "currency": "EUR", "timestamp": iso(at),
                  "availability": "in_stock", "attributes": {"name": "Trail tent"}}
        return w.topics["catalogue"], item.encode(), orjson.dumps(record)

    calls = people(prefix, now)
    before = consumed(w, w.topics["clickstream"])
    produce(w.bootstrap, [catalogue(200.0, now),
                          *((w.topics["clickstream"], str(c["userId"]).encode(), orjson.dumps(c))
                            for c in calls)])
    wait_until(lambda: consumed(w, w.topics["clickstream"]) >= before + len(calls), 60,
               "the views decided")
    produce(w.bootstrap, [catalogue(150.0, now + 60)])
    mine = lambda vs: [a for a in map(action_codec.decode, vs)  # noqa: E731
                       if a.action == "price-drop" and a.payload.get("item_id") == item]
    found = mine(consume(w.bootstrap, w.topics["actions"], lambda vs: len(mine(vs)) >= 2))
    time.sleep(2)  # a third would come with the other two, from the same item step
    found = mine(consume(w.bootstrap, w.topics["actions"], lambda vs: len(mine(vs)) >= 3, 5))
    assert sorted(str(a.recipient) for a in found) == [
        f"{prefix}-0@example.com", f"{prefix}-1@example.com"]
    assert {(a.payload["old_price"], a.payload["price"], a.payload["drop_pct"]) for a in found} \
        == {(200.0, 150.0, 25.0)}


def test_the_collector_takes_a_batch_of_items_and_dead_letters_the_bad_ones() -> None:
    with Collector() as c:
        for call in people("http", time.time()):
            status, _ = post(c.url + "/v1/" + str(call.pop("type")), orjson.dumps(call))
            assert status == 200
        items = [{"item_id": "http-tent", "price": 100.0, "timestamp": iso(time.time())},
                 {"item_id": "http-tent", "price": "free", "timestamp": iso(time.time())}]
        status, answer = post(c.url + "/v1/catalogue", orjson.dumps(items))
        assert (status, answer["accepted"]) == (200, 1)
        assert [(r["index"], r["field"]) for r in answer["rejected"]] == [(1, "$[1].price")]
        assert [d.topic for d in c.dead] == ["kairos-catalogue"]
        drop = {"item_id": "http-tent", "price": 80.0, "timestamp": iso(time.time() + 1)}
        status, _ = post(c.url + "/v1/catalogue", orjson.dumps(drop))
        assert status == 200
        got = [a for a in c.actions if a.action == "price-drop"]
        assert sorted(a.contact_id for a in got) == sorted(
            c.contact(f"user:http-{i}").contact_id for i in (0, 1))
        status, answer = post(c.url + "/v1/catalogue", b'{"price": 1}', key="wrong")
        assert status == 401
