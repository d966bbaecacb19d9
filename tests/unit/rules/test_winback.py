from engine.testing import Scenario
from tests.helpers import module_rules, open_policy, reachable


def scenario() -> Scenario:
    return reachable(Scenario(module_rules("winback.py"), policy=open_policy()), "u1", "u2")


def test_sixty_silent_days_lapse_a_customer_then_win_back_then_goodbye() -> None:
    s = scenario()
    s.track("u1", "Order Completed")
    assert s.advance(days=59) == []
    [offer] = s.advance(days=2)
    assert offer.action == "win-back-offer" and s.contact("u1").lifecycle == "lapsed"
    [bye] = s.advance(days=30)
    assert bye.action == "preferences-goodbye"


def test_any_sign_of_life_pushes_the_inactivity_back() -> None:
    s = scenario()
    s.track("u1", "Order Completed")
    s.advance(days=50)
    s.page("u1", "/")
    assert s.advance(days=50) == []
    assert [a.action for a in s.advance(days=11)] == ["win-back-offer"]


def test_prospects_who_never_bought_are_not_won_back() -> None:
    s = scenario()
    s.page("u1", "/")
    assert s.advance(days=100) == []
