from engine.testing import Scenario
from tests.helpers import module_rules, open_policy


def scenario() -> Scenario:
    return Scenario(module_rules("pricing_interest.py"), policy=open_policy())


def test_pricing_twice_in_a_week_asks_sales_to_call() -> None:
    s = scenario()
    assert s.page("u1", "/pricing") == []
    s.advance(days=3)
    [a] = s.page("u1", "/pricing")
    assert (a.rule_id, a.channel, a.action) == ("pricing-page-twice", "crm", "sales-follow-up")
    s.advance(days=1)
    assert s.page("u1", "/pricing") == []  # cooling down for a week


def test_twice_more_than_a_week_apart_is_not_a_signal() -> None:
    s = scenario()
    s.page("u1", "/pricing")
    s.advance(days=8)
    assert s.page("u1", "/pricing") == []
    assert s.page("u1", "/home") == []
