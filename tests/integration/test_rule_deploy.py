"""Rules change on a running worker: deploy, new version, shadow and promote, disable — no
restart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.model import actions as action_codec
from engine.testing.kafka import Worker, consume, produce
from tests.helpers import ROOT
from tests.integration.journey import T0, segment

pytestmark = pytest.mark.kafka

RULE = '''
from engine.sdk import Context, Proposal, on, rule


@rule("hello-page", version={version}, triggers=[on("page")], description="greets page views")
def hello(ctx: Context) -> Proposal:
    return Proposal(action="hello-v{version}", channels=("web",), priority=1)
'''


def kairos(worker: Worker, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=worker.env,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def page_action(worker: Worker, event_id: str, timeout: float,
                topic: str = "actions") -> action_codec.Action | None:
    """The action a page view decided, on the actions topic (or another: "shadow")."""
    produce(worker.bootstrap, [(worker.topics["clickstream"], b"anon-r", segment(
        "page", event_id, T0, anonymousId="anon-r", name="/home"))])
    values = consume(
        worker.bootstrap, worker.topics[topic],
        lambda vs: any(action_codec.decode(v).trigger_event_id == event_id for v in vs),
        timeout=timeout,
    )
    found = [a for a in map(action_codec.decode, values) if a.trigger_event_id == event_id]
    return found[0] if found else None


def bundles_applied(worker: Worker) -> int:
    """Rule bundles the worker has swapped in so far, from its log."""
    return len(re.findall(r"rules bundle \S+ applied", worker.log_path.read_text(errors="replace")))


def test_deployed_rules_reach_a_running_worker_within_seconds(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("__pycache__"))
    w = Worker(kafka_bootstrap, tmp_path / "w").start()
    try:
        assert page_action(w, "before", timeout=8) is None  # no rule reacts to a plain page view

        (rules / "hello.py").write_text(RULE.format(version=1))
        for version in (1, 2):  # deploy refuses an action without its templates
            (rules / "templates" / f"hello-v{version}").mkdir()
            (rules / "templates" / f"hello-v{version}" / "web.json").write_text(
                '{"headline": "Hello from {{ action.rule }}"}')
        deployed = time.monotonic()
        kairos(w, "rules", "deploy", str(rules))
        first = None
        for attempt in range(20):  # each try is a new event; the first decided after the swap
            first = page_action(w, f"v1-{attempt}", timeout=1.5)
            if first:
                break
        assert first is not None, w.log_tail()
        assert (first.rule_id, first.rule_version, first.action) == ("hello-page", 1, "hello-v1")
        assert time.monotonic() - deployed < 30

        (rules / "hello.py").write_text(RULE.format(version=2))
        kairos(w, "rules", "deploy", str(rules))
        second = None
        for attempt in range(20):
            second = page_action(w, f"v2-{attempt}", timeout=1.5)
            if second and second.rule_version == 2:
                break
        assert second is not None and second.rule_version == 2 and second.action == "hello-v2"

        kairos(w, "rules", "shadow", "hello-page", "--dir", str(rules), "--deploy")
        tried = None
        for attempt in range(20):  # decided in shadow once the bundle is applied
            tried = page_action(w, f"shadow-{attempt}", timeout=1.5, topic="shadow")
            if tried:
                break
        assert tried is not None and tried.action == "hello-v2", w.log_tail()
        live = consume(w.bootstrap, w.topics["actions"], lambda vs: False, timeout=3)
        assert tried.trigger_event_id not in {action_codec.decode(v).trigger_event_id
                                              for v in live}
        kairos(w, "rules", "promote", "hello-page", "--dir", str(rules), "--deploy")
        promoted = None
        for attempt in range(20):
            promoted = page_action(w, f"promoted-{attempt}", timeout=1.5)
            if promoted:
                break
        assert promoted is not None and promoted.rule_id == "hello-page"

        applied = bundles_applied(w)
        kairos(w, "rules", "disable", "hello-page", "--dir", str(rules), "--deploy")
        deadline = time.monotonic() + 30
        while bundles_applied(w) == applied and time.monotonic() < deadline:
            time.sleep(0.2)
        assert bundles_applied(w) > applied, w.log_tail()
        assert page_action(w, "after-disable", timeout=3) is None
        # A broken bundle is refused at the door: nothing is published, the worker keeps going.
        (rules / "broken.py").write_text("import does_not_exist\n")
        out = subprocess.run(
            [sys.executable, "-m", "engine.cli", "rules", "deploy", str(rules)],
            cwd=ROOT, env={**os.environ, **w.env}, capture_output=True, text=True, timeout=60,
            check=False,
        )
        assert out.returncode != 0 and "broken.py" in out.stderr
    finally:
        w.stop()
