"""Scoring: points per interest domain for each action, decaying when the contact goes quiet.

A page view is worth 1, a product view 2, a cart add 3, an email open 1, a click 2, a social
like, comment or share 1. The score halves every 14 days without new points
(`INTEREST_HALF_LIFE`). Thresholds move the journey stage forward: consideration at 5, decision
at 15 — the ideal moment for a personal, commercial contact.
"""

from engine.sdk import Context, Proposal, on, rule

POINTS = {
    ("page", None): 1.0,
    ("track", "Product Viewed"): 2.0,
    ("track", "Product Added"): 3.0,
    ("email", "open"): 1.0,
    ("email", "click"): 2.0,
    ("social", "like"): 1.0,
    ("social", "comment"): 1.0,
    ("social", "share"): 1.0,
}
CONSIDERATION, DECISION = 5.0, 15.0
UNCATEGORISED = "general"


@rule(
    "interest-scoring",
    triggers=[on(kind, name) for kind, name in POINTS],
    description="adds interest points per domain and moves the journey stage at thresholds",
)
def interest_scoring(ctx: Context) -> None:
    ev = ctx.event
    points = POINTS.get((ev.kind, ev.name), POINTS.get((ev.kind, None), 0.0))
    best = 0.0
    for domain in ev.categories or (UNCATEGORISED,):
        best = max(best, ctx.add_interest(domain, points))
    if ctx.state.stage == "awareness" and best >= CONSIDERATION:
        ctx.set_stage("consideration")
    if ctx.state.stage == "consideration" and best >= DECISION:
        ctx.set_stage("decision")


@rule(
    "decision-stage-sales-contact",
    triggers=[on("stage", "decision")],
    description="interest crossed the decision threshold: a personal sales contact",
)
def decision_stage_sales_contact(ctx: Context) -> Proposal:
    top = ctx.top_interest()
    return Proposal(
        action="personal-offer",
        channels=("crm", "email"),
        priority=80,
        value=2.0,
        payload={"domain": top[0] if top else None, "score": round(top[1], 1) if top else 0},
        ttl=3 * 86_400,
        cooldown=30 * 86_400,
    )
