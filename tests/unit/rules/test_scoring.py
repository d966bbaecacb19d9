import pytest

from engine.testing import Scenario
from tests.helpers import module_rules, open_policy


def scenario() -> Scenario:
    return Scenario(module_rules("scoring.py"), policy=open_policy())


def view(s: Scenario, category: str = "outdoor") -> list:
    return s.track("u1", "Product Viewed", properties={"category": category})


def test_points_accumulate_per_domain_and_move_the_stage_at_thresholds() -> None:
    s = scenario()
    view(s), view(s)
    assert s.contact("u1").stage == "awareness"  # 4 points
    view(s)
    assert s.contact("u1").stage == "consideration"  # 6 >= 5
    s.track("u1", "Product Added", properties={"category": "outdoor"})  # 9
    for _ in range(2):
        assert view(s) == []  # 11, 13
    [a] = view(s)  # 15: decision, the ideal moment for a commercial offer
    assert (a.rule_id, a.action, a.channel) == ("decision-stage-sales-contact", "personal-offer", "crm")
    assert a.payload == {"domain": "outdoor", "score": 15.0}
    assert s.contact("u1").stage == "decision"


def test_scores_decay_when_the_contact_goes_quiet() -> None:
    s = scenario()
    for _ in range(3):
        view(s)
    s.advance(days=28)  # two half-lives: 6 -> 1.5
    assert s.contact("u1").score("outdoor", s.now, 14 * 86_400) == pytest.approx(1.5)
    assert view(s) == []


def test_domains_are_scored_separately() -> None:
    s = scenario()
    for _ in range(4):
        view(s, "books")
    view(s, "baby")
    c = s.contact("u1")
    assert c.score("books", s.now, 14 * 86_400) == pytest.approx(8.0)
    assert c.score("baby", s.now, 14 * 86_400) == pytest.approx(2.0)
