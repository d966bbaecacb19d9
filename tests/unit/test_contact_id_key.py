"""Keyed contact ids: stable, secret-dependent, unchanged without a key, agreed by every caller."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine.config import Settings
from engine.core.identity import contact_id_for
from engine.core.policy import Policy
from engine.errors import PolicyError, SettingsError
from engine.ops.realistic import RealisticGenerator
from engine.ops.replay import replay
from engine.sdk.ruleset import RuleSet
from engine.testing import Scenario

KEY = "contact-id-secret-0123456789"


def keyed_policy(key: str = KEY) -> Policy:
    return Settings.from_env({"KAIROS_CONTACT_ID_KEY": key}).load_policy()


def test_the_unkeyed_default_is_the_id_existing_deployments_have() -> None:
    legacy = "c" + hashlib.blake2b(b"email:ada@example.com", digest_size=10).hexdigest()
    assert contact_id_for("email:ada@example.com") == legacy
    assert Settings.from_env({}).load_policy().identity.contact_id_key == ""


def test_a_keyed_id_is_stable_and_differs_with_the_key() -> None:
    one = contact_id_for("email:ada@example.com", KEY)
    assert one == contact_id_for("email:ada@example.com", KEY)
    assert one != contact_id_for("email:ada@example.com")
    assert one != contact_id_for("email:ada@example.com", KEY + "x")
    assert one.startswith("c") and len(one) == len(contact_id_for("email:ada@example.com"))


def test_the_pipeline_starts_contacts_under_the_keyed_id() -> None:
    s = Scenario(policy=keyed_policy())
    s.page("anon-1", "/home")
    s.segment("identify", "u1", traits={"email": "ada@example.com"})
    assert s.contact("anon:anon-1").contact_id == contact_id_for("anon:anon-1", KEY)
    assert s.contact("user:u1").contact_id == contact_id_for("user:u1", KEY)
    assert s.contact("user:u1").contact_id != contact_id_for("user:u1")


def test_partitioned_replay_agrees_with_one_process_under_a_key(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [g.value for g in RealisticGenerator(30, seed=5, days=7)]
    events.write_bytes(b"".join(line + b"\n" for line in lines))
    rules, policy = RuleSet.load(), keyed_policy()
    outs = []
    for jobs in (1, 2):
        with (tmp_path / f"a{jobs}").open("wb") as out, (tmp_path / f"d{jobs}").open("wb") as d:
            replay(events, rules, out, d, policy, jobs=jobs)
        outs.append((tmp_path / f"a{jobs}").read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") > 10
    with (tmp_path / "plain").open("wb") as out:
        replay(events, rules, out)
    assert (tmp_path / "plain").read_bytes() != outs[0]  # the same decisions, other contact ids


def test_the_key_never_shows_in_a_repr_and_never_comes_from_a_policy_file(
        tmp_path: Path) -> None:
    assert KEY not in repr(keyed_policy()) and KEY not in repr(Settings.from_env(
        {"KAIROS_CONTACT_ID_KEY": KEY}))
    path = tmp_path / "policy.toml"
    path.write_text('[identity]\ncontact_id_key = "in-git"\n')
    with pytest.raises(PolicyError, match=r"set KAIROS_CONTACT_ID_KEY"):
        Policy.load(path)


def test_a_key_longer_than_blake2b_takes_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"KAIROS_CONTACT_ID_KEY: .*at most 64 bytes"):
        keyed_policy("k" * 65)
