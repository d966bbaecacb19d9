"""Client libraries nobody on the project wrote, against the collector with the embedded engine.

rudder-sdk-python, segment-analytics-python and @segment/analytics-node (a Node driver in
tests/clients/) each send all six Segment calls in one batch, gzipped and not where the library
can, with one item the decoders refuse among the good ones (a track with an empty event name,
which every one of them lets through). Every good call must become contact state, the bad one a
dead letter naming its field, and each batch must be posted exactly once: a library that retries
a refused batch, or chokes on the error body, loses or repeats data in production.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import msgspec
import orjson
import pytest

from engine.model.deadletter import DeadLetter
from engine.model.state import ContactState
from engine.ops.explain import resolve
from tests.helpers import ROOT, unavailable
from tests.integration.test_collector import KEY, Collector

CLIENTS = ROOT / "tests" / "clients"
BAD_INDEX = 3  # where each batch carries its one invalid item
BOUND = 10.0  # seconds a flush may take: one round trip, never a backoff loop


@dataclass
class Sent:
    """One library's run: who it spoke for, and what it reported itself."""

    tag: str
    requests: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def collector() -> Iterator[tuple[Collector, list[DeadLetter]]]:
    with Collector() as c:
        letters: list[DeadLetter] = []
        c.runtime.on_dead_letter = letters.append
        yield c, letters


def ids(tag: str) -> dict[str, str]:
    return {"user": f"user-{tag}", "anon": f"anon-{tag}", "email": f"{tag}@example.com",
            "group": f"acct-{tag}"}


def python_calls(client: Any, tag: str) -> None:
    """The six call types through a Python library's own methods (both share the signatures)."""
    i = ids(tag)
    client.track(anonymous_id=i["anon"], event="Product Viewed", properties={"sku": "b-1"})
    client.identify(i["user"], {"email": i["email"], "plan": "pro", "consent": {"email": True}})
    client.track(i["user"], "Order Completed",
                 {"order_id": f"o-{tag}", "products": [{"category": "books"}]})
    client.track(i["user"], "", {})  # BAD_INDEX: refused by the decoders, let through by the library
    client.page(i["user"], category="docs", name="/pricing")
    client.screen(i["user"], name="Home")
    client.group(i["user"], i["group"], {"name": f"Account {tag}", "industry": "books"})
    client.alias(i["anon"], i["user"])


def node_calls(tag: str) -> list[dict[str, Any]]:
    """The same calls as `python_calls`, as @segment/analytics-node's method arguments."""
    i = ids(tag)
    return [
        {"type": "track", "anonymousId": i["anon"], "event": "Product Viewed",
         "properties": {"sku": "b-1"}},
        {"type": "identify", "userId": i["user"],
         "traits": {"email": i["email"], "plan": "pro", "consent": {"email": True}}},
        {"type": "track", "userId": i["user"], "event": "Order Completed",
         "properties": {"order_id": f"o-{tag}", "products": [{"category": "books"}]}},
        {"type": "track", "userId": i["user"], "event": ""},
        {"type": "page", "userId": i["user"], "category": "docs", "name": "/pricing"},
        {"type": "screen", "userId": i["user"], "name": "Home"},
        {"type": "group", "userId": i["user"], "groupId": i["group"],
         "traits": {"name": f"Account {tag}", "industry": "books"}},
        {"type": "alias", "userId": i["user"], "previousId": i["anon"]},
    ]


def send_python(request_module: ModuleType, make: Callable[[Callable[..., None]], Any],
                tag: str, monkeypatch: pytest.MonkeyPatch) -> Sent:
    """Send with a Python library, counting the HTTP posts its own session makes."""
    sent = Sent(tag)
    post = request_module._session.post

    def counted(*args: Any, **kwargs: Any) -> Any:
        sent.requests += 1
        return post(*args, **kwargs)

    monkeypatch.setattr(request_module._session, "post", counted)
    client = make(lambda exc, batch: sent.errors.append(repr(exc)))
    python_calls(client, tag)
    start = time.monotonic()
    client.flush()  # blocks until the library's upload thread has posted the queue
    client.shutdown()
    sent.seconds = time.monotonic() - start
    return sent


def library_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the libraries (and the backoff package rudder retries with) logged as a problem."""
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.split(".")[0] in
            {"rudderstack", "segment", "backoff"}]


def assert_state(c: Collector, letters: list[DeadLetter], tag: str) -> None:
    """Every good call of the run is state on the one contact; the bad one a dead letter."""
    i = ids(tag)
    flushed = threading.Event()  # the runtime belongs to the collector's loop: flush it there
    c.loop.call_soon_threadsafe(lambda: (c.runtime.flush(), flushed.set()))
    assert flushed.wait(10)
    st = resolve(f"user:{i['user']}", c.runtime.identity.get, c.runtime.contacts.get)
    assert isinstance(st, ContactState), f"no contact for {i['user']}"
    # alias: the device's earlier activity is the user's, and the device now points at them
    linked = resolve(f"anon:{i['anon']}", c.runtime.identity.get, c.runtime.contacts.get)
    assert linked is not None and linked.contact_id == st.contact_id
    assert f"anon:{i['anon']}" in st.identifiers
    assert st.count("track:Product Viewed") == 1
    # identify, wherever the library put the traits (rudder: context.traits)
    assert st.addresses["email"].value == i["email"]
    assert st.traits.get("plan") == "pro"
    assert st.consent["email"].granted
    assert st.count("track:Order Completed") == 1
    assert st.count("page:/pricing") == 1
    assert st.count("screen") == 1 and st.count("screen:Home") == 1
    # group: the account and its traits are on the contact
    encoded = msgspec.json.encode(st)
    assert i["group"].encode() in encoded and f"Account {tag}".encode() in encoded
    welcomes = [a for a in c.actions if a.action == "welcome-books" and a.recipient == i["email"]]
    assert len(welcomes) == 1
    mine = [d for d in letters if i["user"] in d.value]
    assert len(mine) == 1, [d.reason for d in letters]
    assert f"[{BAD_INDEX}].event" in mine[0].reason and orjson.loads(mine[0].value)["event"] == ""


@pytest.mark.parametrize("use_gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("library", ["rudderstack", "segment"])
def test_python_library(collector: tuple[Collector, list[DeadLetter]], library: str,
                        use_gzip: bool, monkeypatch: pytest.MonkeyPatch,
                        caplog: pytest.LogCaptureFixture) -> None:
    """rudder-sdk-python (identify traits in `context.traits`; it reads `code` and `message`
    from an error body, and took a 400 without them for a network error) and Segment's own."""
    request = importlib.import_module(f"{library}.analytics.request")
    client = importlib.import_module(f"{library}.analytics.client").Client

    c, letters = collector
    tag = f"{library}-{'gz' if use_gzip else 'plain'}"
    with caplog.at_level(logging.INFO):
        sent = send_python(request, lambda on_error: client(
            KEY, host=c.url, gzip=use_gzip, max_retries=3, on_error=on_error), tag, monkeypatch)
    logs = library_logs(caplog)
    assert not any("KeyError" in line for line in logs), logs
    assert sent.errors == [] and logs == []
    assert sent.requests == 1 and sent.seconds < BOUND, sent
    assert_state(c, letters, tag)


def test_segment_analytics_node(collector: tuple[Collector, list[DeadLetter]]) -> None:
    """analytics-node 3.1.0 has no gzip option: it always posts plain JSON."""
    node = shutil.which("node")
    if node is None or not (CLIENTS / "node_modules" / "@segment" / "analytics-node").is_dir():
        unavailable("node or tests/clients/node_modules missing: run `make clients`")
    c, letters = collector
    tag = "segment-node"
    calls = node_calls(tag)
    start = time.monotonic()
    proc = subprocess.run([node, str(CLIENTS / "send.mjs")], cwd=CLIENTS, capture_output=True,
                          timeout=30, input=orjson.dumps(
                              {"host": c.url, "writeKey": KEY, "calls": calls}))
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr.decode()
    report = orjson.loads(proc.stdout)
    assert report == {"errors": [None] * len(calls), "statuses": [200]}  # one post, accepted
    assert seconds < BOUND
    assert_state(c, letters, tag)

