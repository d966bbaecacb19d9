"""Social interactions that deserve a human answer become call-centre tasks."""

from engine.sdk import Context, Proposal, on, rule


@rule(
    "social-mention-follow-up",
    triggers=[on("social", "mention"), on("social", "message")],
    description="mentioned or messaged the brand on social: a community-manager task in the CRM",
)
def social_mention_follow_up(ctx: Context) -> Proposal:
    return Proposal(
        action="answer-social",
        channels=("crm",),
        priority=40,
        payload={
            "network": ctx.event.categories[0] if ctx.event.categories else None,
            "post_id": ctx.event.properties.get("post_id"),
            "text": ctx.event.properties.get("text"),
        },
        ttl=2 * 86_400,
    )
