"""Reaction to actions: someone who keeps coming back to the pricing page wants to talk."""

from engine.sdk import DAY, Context, Proposal, on, rule


@rule(
    "pricing-page-twice",
    triggers=[on("page", "/pricing")],
    description="pricing page seen twice within a week: a sales follow-up task",
)
def pricing_page_twice(ctx: Context) -> Proposal | None:
    if ctx.count_within("page:/pricing", 7 * DAY) < 2:
        return None
    return Proposal(
        action="sales-follow-up",
        channels=("crm",),
        priority=70,
        payload={"reason": "pricing page twice in 7 days", "top_interest": _top(ctx)},
        ttl=2 * DAY,
        cooldown=7 * DAY,
    )


def _top(ctx: Context) -> str | None:
    top = ctx.top_interest()
    return top[0] if top else None
