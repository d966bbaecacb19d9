"""A rules directory holding one tiny rule with a short timer, for clock and restart tests."""

from __future__ import annotations

from pathlib import Path

from tests.integration.journey import segment

RULE = '''
from engine.sdk import Context, Proposal, on, on_timer, rule


@rule("ping-later", triggers=[on("page"), on_timer("ping")], description="a page, then a ping")
def ping_later(ctx: Context) -> Proposal | None:
    if ctx.timer is None:
        ctx.schedule("ping", after={after}, payload={{"page": ctx.event.properties.get("path")}})
        return None
    return Proposal(action="ping", channels=("web",), priority=1, payload=dict(ctx.timer.payload))
'''


def timer_rules(directory: Path, after: float) -> Path:
    """`directory` with the ping rule (a page view, then a `ping` web action `after` s later)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ping.py").write_text(RULE.format(after=after))
    return directory


def page_view(event_id: str, t: float, anon: str = "anon-ping") -> bytes:
    """A Segment page call that starts the ping timer of the contact `anon`."""
    return segment("page", event_id, t, anonymousId=anon, name="/wait",
                   properties={"path": "/wait"})
