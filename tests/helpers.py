"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

from engine.core.policy import Policy
from engine.sdk.ruleset import DEFAULT_RULES_DIR, DISABLED_FILE, RuleSet, load_rules
from engine.testing import UNLIMITED_POLICY, Scenario

ROOT = Path(__file__).resolve().parents[1]  # the checkout: deploy/, rules/, load_tests/


def unavailable(msg: str) -> NoReturn:
    """Something a test needs is missing: skip, except under KAIROS_REQUIRE_SERVICES=1 (what
    `make test` sets), where it fails, so CI can never pass by skipping."""
    if os.environ.get("KAIROS_REQUIRE_SERVICES"):
        pytest.fail(msg)
    pytest.skip(msg)

SPINE = ("first-purchase-in-category", "cart-abandoned", "email-click-related-content",
         "social-mention-follow-up")


def spine_rules() -> RuleSet:
    """The four small shipped rules the core's own tests are written against, whatever else
    ships: adding a rule module must not change what a core test means."""
    return RuleSet(r for r in load_rules(DEFAULT_RULES_DIR) if r.id in SPINE)


def module_rules(*sources: str) -> RuleSet:
    """The rules of some shipped modules only (`"scoring.py"`), to test them on their own."""
    return RuleSet(r for r in load_rules(DEFAULT_RULES_DIR) if r.source in sources)


def open_policy() -> Policy:
    """No caps and no quiet hours: for tests about a rule, not about the contact policy."""
    return Policy.load(UNLIMITED_POLICY)


# Rules whose decisions depend only on the order of a contact's events, not on when a process
# happens to run them (interest scores decay with the clock): what runs compared across
# processes, kills and rebalances must decide the same, so only these run there.
ORDER_ONLY_RULES = ("first-purchase-in-category", "cart-abandoned", "affinity-third-item",
                    "email-click-related-content", "social-mention-follow-up")


def order_only_rules(into: Path) -> Path:
    """A copy of the shipped rules with every other rule disabled (`disabled.txt`)."""
    shutil.copytree(DEFAULT_RULES_DIR, into, ignore=shutil.ignore_patterns(DISABLED_FILE))
    others = sorted(r.id for r in load_rules(into) if r.id not in ORDER_ONLY_RULES)
    (into / DISABLED_FILE).write_text("\n".join(others) + "\n")
    return into


def reachable(s: Scenario, *users: str) -> Scenario:
    """Contacts a test means as reachable and consenting: an email address, a phone, a push
    token, and an opt-in on those channels and print (silence is not consent for marketing)."""
    for user in users or ("u1",):
        s.segment("identify", user, context={"device": {"token": f"push-{user}"}},
                  traits={"email": f"{user}@example.com", "phone": f"+336000{user}",
                          "consent": {"email": True, "sms": True, "push": True, "print": True}})
    return s


def rules_dir(tmp_path: Path, **files: str) -> Path:
    """A rules directory of the given files (`vip__toml=...` is `vip.toml`)."""
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name.replace("__", ".")).write_text(text)
    return d
