"""Journey stages and lifecycle: qualify leads, follow up after a purchase, nudge the second one.

Lifecycle moves by itself on facts (observe: lead on "Signed Up", customer then repeat on
"Order Completed"); these rules act on those moments.
"""

from engine.sdk import DAY, Context, Proposal, on, on_timer, rule

QUALIFIED_INTEREST = 15.0


@rule(
    "lead-qualification",
    triggers=[on("page", "/pricing"), on("stage", "decision"), on("lifecycle", "lead")],
    description="a lead showing buying intent: a qualification call",
)
def lead_qualification(ctx: Context) -> Proposal | None:
    if ctx.state.lifecycle != "lead" or ctx.memory.data.get("qualified"):
        return None
    top = ctx.top_interest()
    intent = ctx.event.kind == "page" or ctx.state.stage == "decision"
    if not intent and (top is None or top[1] < QUALIFIED_INTEREST):
        return None
    ctx.memory.data["qualified"] = True
    return Proposal(action="qualify-lead", channels=("crm",), priority=70,
                    payload={"signal": f"{ctx.event.kind}:{ctx.event.name}",
                             "domain": top[0] if top else None},
                    ttl=3 * DAY)


@rule(
    "post-purchase-follow-up",
    triggers=[on("track", "Order Completed"), on_timer("satisfaction")],
    description="three days after a purchase: how was it? (satisfaction drives the next one)",
)
def post_purchase_follow_up(ctx: Context) -> Proposal | None:
    if ctx.timer is None:
        order_id = ctx.event.properties.get("order_id")
        ctx.schedule("satisfaction", after=3 * DAY, payload={"order_id": order_id})
        return None
    return Proposal(action="satisfaction-survey", channels=("email",), priority=35,
                    payload=dict(ctx.timer.payload), ttl=4 * DAY, cooldown=14 * DAY)


@rule(
    "second-purchase-nudge",
    triggers=[on("lifecycle", "customer"), on_timer("second-purchase")],
    description="a first-time customer who has not come back in 30 days: an offer to return",
)
def second_purchase_nudge(ctx: Context) -> Proposal | None:
    if ctx.timer is None:
        ctx.schedule("second-purchase", after=30 * DAY,
                     cancel_on=[on("track", "Order Completed")])
        return None
    if ctx.state.lifecycle != "customer":
        return None
    categories = [c for p in ctx.state.purchases for c in p.categories]
    return Proposal(action="second-purchase-offer", channels=("email", "push"), priority=55,
                    payload={"categories": sorted(set(categories))}, ttl=7 * DAY)
