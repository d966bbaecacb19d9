"""Realistic multi-channel journeys for demos, tests and load: deterministic from a seed.

Each contact browses anonymously, may sign up (identify with email, consent and social handles),
adds to cart, buys or abandons, receives and reacts to emails, and interacts on social networks.
The output is wire bytes in each source's own shape, in event-time order, with an optional
sprinkle of bad input so dead letters show up too.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from engine.model.events import Source, iso

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC).timestamp()
CATEGORIES = ("baby", "outdoor", "electronics", "home", "fashion", "books")
PAGES = ("/", "/pricing", "/blog/choosing-a-tent", "/stores", "/faq", "/category/{c}")
NETWORKS = ("twitter", "instagram", "facebook")
TIMEZONES = ("Europe/Paris", "Europe/London", "America/New_York", "Asia/Tokyo")
CITIES = (("Paris", "FR"), ("Lyon", "FR"), ("London", "GB"), ("New York", "US"))


@dataclass(frozen=True, slots=True)
class Generated:
    time: float
    source: Source
    value: bytes


class JourneyGenerator:
    def __init__(self, contacts: int = 300, seed: int = 7, bad_ratio: float = 0.005) -> None:
        self.contacts = contacts
        self.rng = random.Random(seed)
        self.bad_ratio = bad_ratio
        self._n = 0

    def __iter__(self) -> Iterator[Generated]:
        """All contacts' journeys merged in time order."""
        for item in heapq.merge(*self._journeys(), key=lambda g: g.time):
            if self.rng.random() < self.bad_ratio:
                yield Generated(item.time, item.source, self._corrupt(item.value))
            else:
                yield item

    def _journeys(self) -> list[list[Generated]]:
        """Each contact's events in time order (merged by `__iter__`)."""
        return [self._journey(i) for i in range(self.contacts)]

    def next_id(self, prefix: str) -> str:
        """A unique id, numbered in generation order (so the same seed gives the same ids)."""
        self._n += 1
        return f"{prefix}-{self._n:08d}"

    def _corrupt(self, value: bytes) -> bytes:
        kind = self.rng.randrange(3)
        if kind == 0:
            return value[: len(value) // 2]  # truncated JSON
        if kind == 1:
            return b"\xff\xfe not json at all"
        return value.replace(b'"timestamp":"', b'"timestamp":{"oops":"', 1)  # wrong type

    def _journey(self, i: int) -> list[Generated]:
        rng = self.rng
        t = START + rng.uniform(0, 3 * 86_400)
        anon = f"anon-{i:06d}-{rng.randrange(1 << 30):08x}"
        user = f"u{i:06d}"
        email = f"contact{i:06d}@example.com"
        tz = rng.choice(TIMEZONES)
        city, country = rng.choice(CITIES)
        ctx = {"timezone": tz, "location": {"city": city, "country": country}, "ip": "127.0.0.1"}
        favourite = rng.choice(CATEGORIES)
        out: list[Generated] = []
        ids: dict[str, str] = {"anonymousId": anon}

        def seg(kind: str, **fields: object) -> None:
            nonlocal t
            t += rng.uniform(5, 240)
            call = {
                "messageId": self.next_id("msg"), "type": kind, "timestamp": iso(t),
                "context": ctx, **ids, **fields,
            }
            out.append(Generated(t, "clickstream", orjson.dumps(call)))

        def mail(event: str, **fields: object) -> None:
            nonlocal t
            t += rng.uniform(60, 3600)
            ev = {
                "event": event, "email": email, "timestamp": int(t),
                "sg_event_id": self.next_id("sg"), "sg_message_id": self.next_id("sgm"),
                "category": ["newsletter"], **fields,
            }
            out.append(Generated(t, "email", orjson.dumps(ev)))

        def social(action: str, handle: str, network: str) -> None:
            nonlocal t
            t += rng.uniform(600, 7200)
            ev = {
                "event_id": self.next_id("soc"), "network": network, "action": action,
                "handle": handle, "timestamp": iso(t), "post_id": self.next_id("post"),
                "text": "Love the new collection @kairos" if action == "mention" else None,
            }
            out.append(Generated(t, "social", orjson.dumps(ev)))

        for _ in range(rng.randint(1, 5)):
            page = rng.choice(PAGES).format(c=favourite)
            seg("page", name=page, properties={"path": page, "url": f"https://shop.example{page}"})
        seg("track", event="Product Viewed",
            properties={"product_id": f"sku-{favourite}-1", "category": favourite})
        if rng.random() < 0.65:
            handle, network = f"@fan{i}", rng.choice(NETWORKS)
            if rng.random() < 0.3:
                social("like", handle, network)
            ids["userId"] = user
            traits = {
                "email": email, "name": f"Contact {i}",
                "consent": {"email": True, "sms": rng.random() < 0.4, "push": rng.random() < 0.5},
                "social_handles": {network: handle},
            }
            seg("identify", traits=traits)
            seg("track", event="Signed Up", properties={"method": "email"})
            mail("delivered")
            if rng.random() < 0.6:
                mail("open")
                if rng.random() < 0.5:
                    mail("click", url=f"https://shop.example/category/{favourite}")
            if rng.random() < 0.05:
                mail(rng.choice(["unsubscribe", "spamreport"]))
            if rng.random() < 0.25:
                social(rng.choice(["mention", "comment", "message", "share"]), handle, network)
        for _ in range(rng.choice([0, 1, 1, 2])):
            category = favourite if rng.random() < 0.7 else rng.choice(CATEGORIES)
            product = {"product_id": f"sku-{category}-{rng.randrange(50)}", "category": category,
                       "price": round(rng.uniform(10, 300), 2)}
            seg("track", event="Product Added", properties=product)
            if rng.random() < 0.55:
                seg("track", event="Order Completed", properties={
                    "order_id": self.next_id("order"), "revenue": product["price"],
                    "products": [product]})
            else:
                t += 3600  # walks away: the abandonment timer fires meanwhile
        return out
