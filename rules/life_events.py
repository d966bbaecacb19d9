"""Life events: the customer's situation changed, so what they need changed too.

- moved to a different climate (Köppen group from rules/data/climate_zones.csv);
- bought baby items for the first time;
- bought two categories that call for a third (rules/data/product_affinity.csv);
- changed postal address (identify traits.address);
- the first purchase's anniversary.
"""

import csv
from pathlib import Path
from typing import Any

from engine.sdk import DAY, Context, Proposal, on, on_timer, rule

DATA = Path(__file__).parent / "data"


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


CLIMATE = {(r["kind"], r["place"].lower()): r["group"] for r in _rows("climate_zones.csv")}
AFFINITY = {
    frozenset((r["category_a"], r["category_b"])): r["suggested"]
    for r in _rows("product_affinity.csv")
}


def climate(location: Any) -> str | None:
    if location is None:
        return None
    city = (getattr(location, "city", None) or "").lower()
    country = (getattr(location, "country", None) or "").upper()
    return CLIMATE.get(("city", city)) or CLIMATE.get(("country", country.lower()))


@rule(
    "moved-climate-zone",
    triggers=[on("page"), on("track"), on("identify")],
    description="moved to a place with a different climate: a seasonal equipment offer",
)
def moved_climate_zone(ctx: Context) -> Proposal | None:
    zone = climate(ctx.event.location)
    if zone is None:
        return None
    before = ctx.memory.remember("zone", zone)
    if before is None or before == zone:
        return None
    city = ctx.event.location.city if ctx.event.location else None
    return Proposal(action="climate-kit", channels=("email", "push"), priority=65,
                    payload={"from_zone": before, "to_zone": zone, "city": city},
                    ttl=14 * DAY, cooldown=180 * DAY)


@rule(
    "first-baby-purchase",
    triggers=[on("track", "Order Completed", category="baby")],
    description="first purchase of baby items: welcome the new parent",
)
def first_baby_purchase(ctx: Context) -> Proposal | None:
    if not ctx.first_time("track:Order Completed@baby"):
        return None
    return Proposal(action="welcome-parent", channels=("email", "push"), priority=75,
                    payload={"guide": "first-months"}, ttl=7 * DAY)


@rule(
    "affinity-third-item",
    triggers=[on("track", "Order Completed")],
    description="two categories bought that call for a third: a cross-sell",
)
def affinity_third_item(ctx: Context) -> Proposal | None:
    bought = {c for p in ctx.state.purchases for c in p.categories}
    for category in ctx.event.categories:
        for other in sorted(bought - {category}):  # sorted: the same choice in every process
            third = AFFINITY.get(frozenset((category, other)))
            if third and third not in bought:
                return Proposal(action=f"cross-sell-{third}", channels=("email", "web"),
                                priority=55, value=1.5,
                                payload={"because": sorted((category, other)),
                                         "suggested": third},
                                ttl=7 * DAY, cooldown=30 * DAY)
    return None


@rule(
    "address-changed",
    triggers=[on("identify")],
    description="a new postal address: a welcome pack to the new home",
)
def address_changed(ctx: Context) -> Proposal | None:
    address = ctx.event.traits.get("address")
    if not isinstance(address, dict) or not address:
        return None
    before = ctx.memory.remember("address", address)
    if before is None or before == address:
        return None
    return Proposal(action="new-home-pack", channels=("print", "email"), priority=60,
                    payload={"address": address}, ttl=21 * DAY, cooldown=90 * DAY)


@rule(
    "first-purchase-anniversary",
    triggers=[on("track", "Order Completed"), on_timer("anniversary")],
    description="a year since the first purchase: a thank-you with an offer",
)
def first_purchase_anniversary(ctx: Context) -> Proposal | None:
    if ctx.timer is None:
        if ctx.first_time("track:Order Completed"):
            ctx.schedule("anniversary", after=365 * DAY)
        return None
    return Proposal(action="anniversary-thanks", channels=("email", "push"), priority=50,
                    payload={"since": ctx.timer.set_at}, ttl=7 * DAY)
