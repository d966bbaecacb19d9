"""Life event: a contact buys in a category for the first time (e.g. first baby items)."""

from engine.sdk import Context, Proposal, on, rule


@rule(
    "first-purchase-in-category",
    triggers=[on("track", "Order Completed")],
    description="first purchase in a category: welcome the contact to it by email",
)
def first_purchase_in_category(ctx: Context) -> list[Proposal]:
    return [
        Proposal(
            action=f"welcome-{category}",
            channels=("email", "push"),
            priority=60,
            payload={"category": category},
            ttl=3 * 86_400,
        )
        for category in ctx.event.categories
        if ctx.state.count(f"track:Order Completed@{category}") == 1
    ]
