"""Nurturing: after sign-up, progressively deeper content every two days until the contact's
interest reaches the hand-over threshold, then a sales hand-over. A purchase ends the flow; a
contact re-enters it at most once every 90 days.
"""

from engine.sdk import DAY, Context, Proposal, on, on_timer, rule

STEPS = ("guide-getting-started", "guide-comparison", "case-study")
EVERY = 2 * DAY
HAND_OVER = 10.0


@rule(
    "lead-nurture",
    triggers=[on("track", "Signed Up"), on_timer("next-step")],
    description="a multi-step content sequence for new leads, handed to sales when ready",
    reentry=90 * DAY,
)
def lead_nurture(ctx: Context) -> Proposal | None:
    mem = ctx.memory
    if ctx.timer is None:  # entering the flow
        mem.step = 0
    top = ctx.top_interest()
    if top is not None and top[1] >= HAND_OVER:
        ctx.cancel("next-step")
        return Proposal(action="sales-hand-over", channels=("crm",), priority=75,
                        payload={"domain": top[0], "score": round(top[1], 1), "step": mem.step},
                        ttl=2 * DAY)
    if mem.step >= len(STEPS):
        return None
    content = STEPS[mem.step]
    mem.step += 1
    if mem.step < len(STEPS) or top is None or top[1] < HAND_OVER:
        ctx.schedule("next-step", after=EVERY, cancel_on=[on("track", "Order Completed")])
    return Proposal(action=content, channels=("email",), priority=40,
                    payload={"step": mem.step, "of": len(STEPS),
                             "domain": top[0] if top else None},
                    ttl=EVERY)
