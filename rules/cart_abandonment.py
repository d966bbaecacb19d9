"""Cart abandonment: a product added and no purchase within 30 minutes gets a reminder.

The purchase is the exit event: it cancels the pending reminder before it fires.
"""

from engine.sdk import Context, Proposal, on, on_timer, rule

WAIT = 30 * 60


@rule(
    "cart-abandoned",
    triggers=[on("track", "Product Added"), on_timer("cart-reminder")],
    description="cart left for 30 minutes without a purchase: remind by email, else push",
)
def cart_abandoned(ctx: Context) -> Proposal | None:
    if ctx.timer is None:
        product = ctx.event.properties.get("product_id") or ctx.event.properties.get("sku")
        ctx.schedule(
            "cart-reminder",
            after=WAIT,
            payload={"product_id": product, "categories": list(ctx.event.categories)},
            cancel_on=[on("track", "Order Completed")],
        )
        return None
    return Proposal(
        action="cart-reminder",
        channels=("email", "push"),
        priority=70,
        payload=dict(ctx.timer.payload),
        ttl=86_400,
        cooldown=86_400,
    )
