"""Browse abandonment and email re-engagement.

- A product viewed and neither added to a cart nor bought within 2 hours: a reminder.
- A contact who keeps receiving emails (5 or more in 30 days) but opened none: switch channel.
"""

from engine.sdk import DAY, Context, Proposal, on, on_timer, rule


@rule(
    "browse-abandoned",
    triggers=[on("track", "Product Viewed"), on_timer("browse-reminder")],
    description="a product viewed, not added or bought within 2 hours: a gentle reminder",
)
def browse_abandoned(ctx: Context) -> Proposal | None:
    if ctx.timer is None:
        ctx.schedule(
            "browse-reminder", after=2 * 3600,
            payload={"product_id": ctx.event.properties.get("product_id"),
                     "categories": list(ctx.event.categories)},
            cancel_on=[on("track", "Product Added"), on("track", "Order Completed")],
        )
        return None
    return Proposal(action="browse-reminder", channels=("email", "web"), priority=45,
                    payload=dict(ctx.timer.payload), ttl=2 * DAY, cooldown=3 * DAY)


@rule(
    "email-re-engagement",
    triggers=[on("email", "delivered")],
    description="emails keep arriving but none is opened: try another channel",
)
def email_re_engagement(ctx: Context) -> Proposal | None:
    if ctx.count_within("email:delivered", 30 * DAY) < 5:
        return None
    if ctx.count_within("email:open", 30 * DAY) or ctx.count_within("email:click", 30 * DAY):
        return None
    return Proposal(action="re-engage", channels=("push", "sms"), priority=45,
                    payload={"delivered_30d": ctx.count_within("email:delivered", 30 * DAY)},
                    ttl=3 * DAY, cooldown=30 * DAY)
