"""The console in a real browser: headless Chromium (Debian's), driven by Playwright, against
`kairos run --http` with live traffic posted the whole time.

Each test asserts what a person would see on the page. With KAIROS_CONSOLE_SCREENSHOTS=DIR the
pages are also saved there (`make console-screenshots` refreshes docs/console/).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api as playwright

from engine.ops.generator import JourneyGenerator
from engine.sdk.ruleset import DEFAULT_RULES_DIR, RuleSet
from engine.testing.kafka import free_port
from tests.helpers import ROOT, unavailable

WRITE_KEY = "wk-console-test"
USERS = "ann:ann-secret,bob:bob-secret"
BROKEN_RULE = '''
from engine.sdk.rule import Proposal, on, rule


@rule("broken-pricing-offer", triggers=[on("page", "/pricing")], description="raises")
def broken(ctx):
    return Proposal("offer", ("email",), value=1 / 0)
'''
SHADOW_RULE = '''
from engine.sdk.rule import Proposal, on, rule


@rule("signup-sms-trial", triggers=[on("track", "Signed Up")], mode="shadow",
      description="a welcome by SMS or email, tried in shadow first")
def trial(ctx):
    return Proposal("welcome-trial", ("sms", "email"), priority=50)
'''
SEGMENT = ("track", "page", "identify", "screen", "group", "alias")


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        unavailable("no chromium on PATH (make test installs Debian's package)")
    return path


class Engine:
    """`kairos run --http` in a subprocess, with a thread posting generated journeys to it."""

    def __init__(self, tmp: Path, users: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rules = tmp / "rules"
        shutil.copytree(DEFAULT_RULES_DIR, rules)
        (rules / "broken_offer.py").write_text(BROKEN_RULE)
        (rules / "signup_trial.py").write_text(SHADOW_RULE)
        self.rules = RuleSet.load(rules)
        policy = tmp / "policy.toml"
        policy.write_text("holdout = 0.3\n")  # control groups: treated vs control per rule
        env = {**os.environ, "KAIROS_WRITE_KEYS": WRITE_KEY, "KAIROS_CONSOLE_USERS": users,
               "KAIROS_CONSOLE_UNMASKED": "ann" if users else "", "KAIROS_POLICY": str(policy),
               "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "run", "--http", f"127.0.0.1:{self.port}",
             "--data-dir", str(tmp / "data"), "--rules", str(rules)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.posted: list[dict] = []
        self.stopping = threading.Event()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode()) from None
                time.sleep(0.1)
        raise RuntimeError("kairos run --http did not answer /health in 30 s")

    def post(self, calls: list[dict]) -> None:
        auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        request = urllib.request.Request(
            f"{self.url}/v1/batch", data=json.dumps({"batch": calls}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.loads(answer.read())["rejected"] == []
        self.posted.extend(calls)

    def traffic(self, contacts: int, seed: int) -> list[dict]:
        return [c for c in (json.loads(g.value) for g in JourneyGenerator(contacts, seed=seed, bad_ratio=0.0))
                if c.get("type") in SEGMENT]

    def keep_posting(self) -> None:
        """Live traffic: a few new journeys a second until the tests end."""
        def run() -> None:
            seed = 100
            while not self.stopping.wait(0.5):
                seed += 1
                self.post(self.traffic(3, seed))

        threading.Thread(target=run, daemon=True).start()

    def close(self) -> None:
        self.stopping.set()
        self.proc.terminate()
        self.proc.wait(timeout=20)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    e = Engine(tmp_path_factory.mktemp("console"), USERS)
    e.post(e.traffic(40, seed=7))
    e.keep_posting()
    yield e
    e.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield b
        b.close()


def as_user(browser, name: str, password: str):
    context = browser.new_context(http_credentials={"username": name, "password": password},
                                  viewport={"width": 1280, "height": 900})
    return context.new_page()


def screenshot(page, name: str, *, full_page: bool = True) -> None:
    target = os.environ.get("KAIROS_CONSOLE_SCREENSHOTS")
    if target:
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=full_page)


def number(text: str) -> float:
    return float(text.replace(",", "").split()[0])


def test_without_console_credentials_every_page_and_asset_is_a_401(engine, browser):
    context = browser.new_context()
    write_key = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    for path in ("/console", "/console/rules", "/console/contacts?q=user:u000001",
                 "/console/live/stream", "/console/static/htmx.min.js"):
        bare = context.request.get(engine.url + path)
        assert bare.status == 401, path
        assert "KAIROS_CONSOLE_USERS" in bare.text()
        assert bare.headers["www-authenticate"].startswith("Basic")
        with_key = context.request.get(engine.url + path,
                                       headers={"Authorization": f"Basic {write_key}"})
        assert with_key.status == 401, path
    page = as_user(browser, "ann", "wrong-password")
    answer = page.goto(engine.url + "/console")
    assert answer is not None and answer.status == 401
    assert "Console credentials needed" in page.inner_text("body")


def test_with_no_console_user_configured_the_page_says_how_to_configure_one(tmp_path, browser):
    bare = Engine(tmp_path, users="")
    try:
        page = browser.new_context().new_page()
        answer = page.goto(bare.url + "/console")
        assert answer is not None and answer.status == 401
        assert "set KAIROS_CONSOLE_USERS=name:password" in page.inner_text("body")
    finally:
        bare.close()


def test_the_overview_shows_figures_that_move_with_the_traffic(engine, browser):
    page = as_user(browser, "bob", "bob-secret")
    page.goto(engine.url + "/console")
    actions = page.locator("table[data-table='Actions by channel'] tr", has_text="email")
    playwright.expect(actions).to_be_visible()
    events = page.locator("table[data-table='Events by source'] td").first
    playwright.expect(events).to_have_text("clickstream")
    decided = page.locator(".card", has_text="decisions/s")
    first = number(decided.inner_text().split("·")[1])
    deadline = time.monotonic() + 15  # htmx refreshes the figures every 2 s, unreloaded
    while number(decided.inner_text().split("·")[1]) <= first and time.monotonic() < deadline:
        time.sleep(0.5)
    assert number(decided.inner_text().split("·")[1]) > first
    assert page.locator("#decision-p99").inner_text().endswith(("µs", "ms"))
    screenshot(page, "overview")


def test_every_loaded_rule_is_listed_with_figures_and_health(engine, browser):
    page = as_user(browser, "bob", "bob-secret")
    page.goto(engine.url + "/console/rules")
    rows = page.locator("tr[data-rule]")
    playwright.expect(rows).to_have_count(len(engine.rules))
    listed = set(rows.evaluate_all("rows => rows.map(r => r.dataset.rule)"))
    assert listed == set(engine.rules.rules)
    lead = page.locator("tr[data-rule='lead-nurture']")
    assert number(lead.locator("td[data-figure='fires'] div").inner_text()) > 0
    assert number(lead.locator("td[data-figure='actions'] div").inner_text()) > 0
    broken = page.locator("tr[data-rule='broken-pricing-offer']")
    playwright.expect(broken.locator(".flag.bad")).to_have_text("erroring")
    assert number(broken.locator("td.num").nth(2).inner_text()) > 0  # errors
    trial = page.locator("tr[data-rule='signup-sms-trial']")
    playwright.expect(trial.locator(".flag.shadow")).to_have_text("shadow")
    assert number(trial.locator("td[data-figure='actions'] div").inner_text()) > 0  # would-be
    compared = lead.locator("td").last
    playwright.expect(compared).to_contain_text("95% CI")  # the policy holds 30% out
    assert " vs " in compared.inner_text()
    beside = page.locator("#shadow-table tr[data-shadow='signup-sms-trial']")
    playwright.expect(beside).to_contain_text("lead-nurture")  # live on the same event
    screenshot(page, "rules")


def test_a_contact_story_after_its_events_masked_unless_allowed(engine, browser):
    posted = [c for c in engine.posted if c.get("userId") == "u000004"]
    assert posted
    for name, password, email_shown in (("bob", "bob-secret", False), ("ann", "ann-secret", True)):
        page = as_user(browser, name, password)
        page.goto(engine.url + "/console/contacts")
        page.fill("input[name=q]", "user:u000004")
        page.press("input[name=q]", "Enter")
        playwright.expect(page.locator("#identifiers")).to_contain_text("user:u000004")
        timeline = page.locator("#timeline > li")
        shown = set(timeline.evaluate_all("items => items.map(i => i.dataset.event)"))
        kept = {c["messageId"] for c in posted}
        assert kept & shown, "the contact's own events are on its timeline"
        decisions = page.locator("#timeline tr[data-decision]")
        assert decisions.count() > 0
        assert decisions.first.locator("td").nth(2).inner_text() in (
            "chosen", "suppressed", "deferred", "held_out", "error")
        identifiers = page.inner_text("#identifiers")
        email = next(i for i in identifiers.split(", ") if i.startswith("email:"))
        assert ("•" not in email) is email_shown
        if email_shown:
            screenshot(page, "contact")
    page.fill("input[name=q]", "user:nobody-like-this")
    page.press("input[name=q]", "Enter")
    playwright.expect(page.locator("#not-found")).to_contain_text("No contact for")


def test_the_live_stream_grows_as_actions_are_decided_and_filters(engine, browser):
    page = as_user(browser, "bob", "bob-secret")
    page.goto(engine.url + "/console/live")
    items = page.locator("#stream > li")
    playwright.expect(items.first).to_be_visible()
    before = items.count()
    engine.post(engine.traffic(30, seed=999))
    page.wait_for_function(f"document.querySelectorAll('#stream > li').length > {before}",
                           timeout=15_000)
    assert "•••@" in page.inner_text("#stream")  # bob sees no address in full
    playwright.expect(page.locator("#stream > li[data-rule='signup-sms-trial'] .flag.shadow")
                      .first).to_be_visible()
    screenshot(page, "live", full_page=False)
    page.select_option("select[name=channel]", "email")
    page.click("button[type=submit]")
    playwright.expect(items.first).to_be_visible()
    channels = set(items.evaluate_all("items => items.map(i => i.dataset.channel)"))
    assert channels == {"email"}
