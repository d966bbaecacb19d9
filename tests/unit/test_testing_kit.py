"""The testing kits: the rule author's stays light, the Kafka one configures workers fully."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.config import Settings
from engine.core.policy import Policy
from engine.testing import UNLIMITED_POLICY
from engine.testing.kafka import ROOT, TOPIC_SETTINGS, Worker


def test_the_rule_authors_kit_does_not_import_kafka_clients() -> None:
    probe = ("import sys; from engine.testing import Scenario; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiokafka'))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_kit_worker_reads_every_topic_of_its_own(tmp_path: Path) -> None:
    w = Worker("127.0.0.1:9", tmp_path, prefix="kit")
    settings = Settings.from_env({k: v for k, v in w.env.items() if k.startswith("KAIROS_")})
    assert settings.app_id == "kit" and settings.bootstrap == "127.0.0.1:9"
    for key, field in TOPIC_SETTINGS.items():
        assert getattr(settings, field) == w.topics[key]
        assert w.topics[key].startswith("kit.")
    every_topic = {f for f in Settings.__struct_fields__ if f.startswith("topic_")}
    assert set(TOPIC_SETTINGS.values()) == every_topic  # a new topic setting is not forgotten
    assert settings.policy == UNLIMITED_POLICY
    assert Policy.load(UNLIMITED_POLICY).channels["email"].daily_cap == 1_000_000
