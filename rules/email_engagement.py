"""Reaction to an email click: show related content on the website next time."""

from engine.sdk import Context, Proposal, on, rule


@rule(
    "email-click-related-content",
    triggers=[on("email", "click")],
    description="clicked an email link: personalise the website with related content",
)
def email_click_related_content(ctx: Context) -> Proposal:
    return Proposal(
        action="related-content",
        channels=("web",),
        priority=30,
        payload={"clicked_url": ctx.event.url, "categories": list(ctx.event.categories)},
        ttl=7 * 86_400,
        cooldown=86_400,
    )
