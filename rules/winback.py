"""Inactivity and win-back: a customer silent for 60 days is lapsed and gets a win-back offer;
still silent 30 days later, a well-made goodbye that asks what they want to hear about.
Every event pushes the inactivity timer back.
"""

from engine.sdk import DAY, Context, Proposal, on, on_timer, rule

QUIET_FOR = 60 * DAY
GOODBYE_AFTER = 30 * DAY


@rule(
    "win-back",
    triggers=[on("page"), on("track"), on("email", "open"), on("email", "click"),
              on("social"), on_timer("inactive"), on_timer("goodbye")],
    description="60 days of silence: lapsed, a win-back offer, then a goodbye done well",
)
def win_back(ctx: Context) -> Proposal | None:
    if ctx.timer is None:  # any sign of life resets the clock
        ctx.cancel("goodbye")
        if ctx.state.purchases:
            ctx.schedule("inactive", after=QUIET_FOR)
        return None
    if ctx.timer.name == "inactive":
        ctx.set_lifecycle("lapsed")
        ctx.schedule("goodbye", after=GOODBYE_AFTER)
        return Proposal(action="win-back-offer", channels=("email", "push"), priority=60,
                        value=1.5, payload={"last_seen": ctx.state.last_seen}, ttl=14 * DAY)
    return Proposal(action="preferences-goodbye", channels=("email",), priority=30,
                    payload={"ask": "topics and frequency"}, ttl=14 * DAY)
