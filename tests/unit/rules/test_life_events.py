from engine.testing import Scenario
from tests.helpers import module_rules, open_policy, reachable


def scenario() -> Scenario:
    return reachable(Scenario(module_rules("life_events.py"), policy=open_policy()), "u1", "u2")


def at(s: Scenario, city: str, country: str) -> list:
    return s.page("u1", "/", context={"location": {"city": city, "country": country}})


def buy(s: Scenario, *categories: str) -> list:
    return s.track("u1", "Order Completed",
                   properties={"products": [{"category": c} for c in categories]})


def test_moving_to_another_climate_zone_is_a_life_event() -> None:
    s = scenario()
    assert at(s, "Paris", "FR") == []  # first known place: nothing moved
    assert at(s, "Lyon", "FR") == []  # same temperate zone
    [a] = at(s, "Montreal", "CA")
    assert (a.rule_id, a.action) == ("moved-climate-zone", "climate-kit")
    assert a.payload == {"from_zone": "C", "to_zone": "D", "city": "Montreal"}
    assert at(s, "Unknownville", "ZZ") == []  # unknown places change nothing


def test_the_country_is_the_fallback_when_the_city_is_unknown() -> None:
    s = scenario()
    at(s, "Some Village", "FR")
    [a] = at(s, "Other Village", "AE")
    assert a.payload["to_zone"] == "B"


def test_first_baby_purchase_welcomes_a_new_parent_once() -> None:
    s = scenario()
    assert [a.action for a in buy(s, "baby")] == ["welcome-parent"]
    assert [a.action for a in buy(s, "baby")] == []


def test_two_categories_that_call_for_a_third_cross_sell_it() -> None:
    s = scenario()
    buy(s, "outdoor")
    [a] = buy(s, "fashion")
    assert (a.action, a.payload["because"]) == ("cross-sell-rain-gear", ["fashion", "outdoor"])
    assert [x.action for x in buy(s, "books")] == []  # no books pairing with these


def test_an_address_change_sends_a_postal_welcome_pack() -> None:
    s = scenario()
    home = {"street": "1 rue de la Paix", "city": "Paris"}
    assert s.identify("u1", address=home) == []
    assert s.identify("u1", address=home) == []
    [a] = s.identify("u1", address={"street": "10 Downing St", "city": "London"})
    assert (a.action, a.channel) == ("new-home-pack", "print")


def test_the_first_purchase_anniversary() -> None:
    s = scenario()
    buy(s, "books")
    s.advance(days=200)
    buy(s, "home")  # not a first purchase: no second anniversary timer
    s.advance(days=164)
    assert [a.action for a in s.advance(days=2)] == ["anniversary-thanks"]
    assert s.advance(days=400) == []
