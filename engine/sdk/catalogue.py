"""For rules on catalogue changes: `on("catalogue", "price_drop")`, `…"back_in_stock")`.

Such an event reaches each contact who showed an interest in the item (`engine/core/items.py`);
its properties carry the item (`item_id`, `price`, `old_price`, `currency`, `availability`,
`old_availability`, `attributes`, `drop_pct` on a price drop) and the contact's own
`interests`: the last time it viewed, carted or wishlisted the item. `interest_since` says
whether one of those kinds is recent enough, the one test every such rule starts with.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.sdk.rule import Context

__all__ = ["interest_since"]


def interest_since(ctx: Context, kinds: Iterable[str], within: float) -> float | None:
    """The latest time the contact showed one of `kinds` of interest (`viewed`, `carted`,
    `wishlisted`) in the event's item, if it is at most `within` seconds before the change."""
    seen = ctx.event.properties.get("interests")
    if not isinstance(seen, dict):
        return None
    times = [t for k, t in seen.items() if k in set(kinds) and isinstance(t, int | float)]
    latest = max(times, default=None)
    return latest if latest is not None and ctx.event.time - latest <= within else None
