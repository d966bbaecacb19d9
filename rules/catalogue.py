"""Catalogue alerts: a change to an item, told to the contacts who showed an interest in it.

- The price dropped by at least 10% and the contact viewed or carted the item within 14 days.
- The item is back in stock and the contact carted or wishlisted it within 30 days.

Each change arrives once per interested contact (`engine/sdk/catalogue.py`); the contact policy
(consent, caps, quiet hours) applies to these alerts as to any other action.
"""

from engine.sdk import DAY, Context, Proposal, interest_since, on, rule

MIN_DROP_PCT = 10.0


def _item(ctx: Context) -> dict[str, object]:
    """What the templates show of the item."""
    p = ctx.event.properties
    keep = ("item_id", "price", "old_price", "currency", "drop_pct", "availability")
    return {k: p[k] for k in keep if p.get(k) is not None} | {
        "name": p.get("attributes", {}).get("name") or p["item_id"]}


@rule(
    "price-drop",
    triggers=[on("catalogue", "price_drop")],
    description="the price of an item viewed or carted within 14 days dropped by 10% or more",
)
def price_drop(ctx: Context) -> Proposal | None:
    if ctx.event.properties.get("drop_pct", 0) < MIN_DROP_PCT:
        return None
    if interest_since(ctx, ("viewed", "carted"), 14 * DAY) is None:
        return None
    return Proposal(action="price-drop", channels=("email", "push"), priority=60,
                    payload=_item(ctx), ttl=2 * DAY, cooldown=7 * DAY)


@rule(
    "back-in-stock",
    triggers=[on("catalogue", "back_in_stock")],
    description="an item carted or wishlisted within 30 days is back in stock",
)
def back_in_stock(ctx: Context) -> Proposal | None:
    if interest_since(ctx, ("carted", "wishlisted"), 30 * DAY) is None:
        return None
    return Proposal(action="back-in-stock", channels=("email", "push"), priority=65,
                    payload=_item(ctx), ttl=3 * DAY, cooldown=7 * DAY)
