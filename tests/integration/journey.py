"""A scripted multi-channel journey of one person, as wire bytes for each input topic."""

from __future__ import annotations

import orjson

from engine.model.events import iso

T0 = 1_790_000_000.0  # 2026-09-21, any fixed instant works


def segment(kind: str, message_id: str, t: float, **fields: object) -> bytes:
    return orjson.dumps({"messageId": message_id, "type": kind, "timestamp": iso(t), **fields})


def email_event(event: str, event_id: str, email: str, t: float, **fields: object) -> bytes:
    return orjson.dumps(
        {"event": event, "email": email, "timestamp": int(t), "sg_event_id": event_id, **fields}
    )


def social_event(action: str, event_id: str, handle: str, t: float, **fields: object) -> bytes:
    return orjson.dumps(
        {"event_id": event_id, "network": "twitter", "action": action, "handle": handle,
         "timestamp": iso(t), **fields}
    )


def phase_one(tag: str) -> list[tuple[str, bytes, bytes]]:
    """Anonymous browsing, a social like, sign-up, first baby purchase: (source, key, value)."""
    anon, user = f"anon-{tag}", f"user-{tag}"
    return [
        ("clickstream", anon.encode(), segment(
            "page", f"{tag}-p1", T0, anonymousId=anon, name="/pricing",
            properties={"path": "/pricing"}, context={"timezone": "Europe/Paris"})),
        ("clickstream", anon.encode(), segment(
            "track", f"{tag}-v1", T0 + 30, anonymousId=anon, event="Product Viewed",
            properties={"product_id": "sku-baby-1", "category": "baby"})),
        ("clickstream", user.encode(), segment(
            "identify", f"{tag}-id", T0 + 60, anonymousId=anon, userId=user,
            traits={"email": f"{tag}@example.com", "social_handles": {"twitter": f"@{tag}"},
                    "consent": {"email": True, "push": True}})),
        ("clickstream", user.encode(), segment(
            "track", f"{tag}-o1", T0 + 120, userId=user, event="Order Completed",
            properties={"order_id": f"{tag}-order-1", "revenue": 42.0,
                        "products": [{"product_id": "sku-baby-1", "category": "baby"}]})),
    ]


def phase_two(tag: str) -> list[tuple[str, bytes, bytes]]:
    """The same person seen only by email address, then only by social handle."""
    email = f"{tag}@example.com"
    return [
        ("email", email.encode(), email_event(
            "click", f"{tag}-e1", email, T0 + 600, url="https://shop.example/baby")),
        ("social", f"@{tag}".encode(), social_event(
            "mention", f"{tag}-s1", f"@{tag}", T0 + 900, text="hello @kairos")),
    ]


EXPECTED = {  # trigger event id suffix -> (rule, channel, action)
    "o1": ("first-baby-purchase", "email", "welcome-parent"),
    "e1": ("email-click-related-content", "web", "related-content"),
    "s1": ("social-mention-follow-up", "crm", "answer-social"),
}
