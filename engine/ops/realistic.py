"""Multi-day histories with the traps a single customer view must survive, deterministic per seed.

People, not sessions: each person comes back on many days over a few weeks (repeat visits,
searches, carts, orders), signs up once and logs in again later, on their own phone and, in some
households, on a device shared with another person (two userIds on one anonymousId, and
anonymous browsing on it in between). Some never give an email address; some give a phone or a
push token. Consent is given and withdrawn: Segment identify traits and `context.consent`,
SendGrid `unsubscribe`, `group_unsubscribe` / `group_resubscribe` (with `asm_group_id`),
`spamreport` and `bounce`. Email and social events follow each person's own address and handle.

Some are returning customers: they first shopped in a stint of days two months to more than a
year before the window, went quiet, and may come back in it. Their silence is what the long
timers are for (win-back after 60 days, its goodbye 30 days later, the second-purchase nudge,
the first-purchase anniversary), so every rule family has timers that come due.
"""

from __future__ import annotations

from typing import Any

import orjson

from engine.model.events import iso
from engine.ops.generator import (
    CATEGORIES,
    CITIES,
    NETWORKS,
    PAGES,
    START,
    TIMEZONES,
    Generated,
    JourneyGenerator,
)

__all__ = ["RealisticGenerator"]

DAY = 86_400.0
SHARED_DEVICE = 0.2  # households of two people who also use one shared device
NO_EMAIL = 0.15  # people who never give an email address
SIGNS_UP = 0.75
RETURNING = 0.35  # people whose first stint was months before the window
EARLIER = (60, 400)  # how many days before the window a returning person's first stint began
STINT = (4, 12)  # days in that first stint
GROUPS = (101, 102)  # SendGrid unsubscribe groups: newsletter, promotions
SEARCHES = ("tent", "stroller", "headphones", "lamp", "boots", "novel")


class RealisticGenerator(JourneyGenerator):
    """`JourneyGenerator`'s output shape and order, from people living over `days` days."""

    def __init__(
        self, contacts: int = 300, seed: int = 7, bad_ratio: float = 0.0, days: int = 28
    ) -> None:
        super().__init__(contacts, seed=seed, bad_ratio=bad_ratio)
        self.days = days

    def _journeys(self) -> list[list[Generated]]:
        out: list[list[Generated]] = []
        i = 0
        while i < self.contacts:
            if i + 1 < self.contacts and self.rng.random() < SHARED_DEVICE:
                shared = f"anon-home-{i:06d}-{self.rng.randrange(1 << 30):08x}"
                out += [_Person(self, i, shared).live(), _Person(self, i + 1, shared).live()]
                i += 2
            else:
                out.append(_Person(self, i, None).live())
                i += 1
        return out


class _Person:
    """One person's days: the events they cause, in their time order."""

    def __init__(self, gen: RealisticGenerator, i: int, shared: str | None) -> None:
        self.gen, self.rng, self.shared = gen, gen.rng, shared
        rng = self.rng
        self.user = f"u{i:06d}"
        self.own = f"anon-{i:06d}-{rng.randrange(1 << 30):08x}"
        self.email = None if rng.random() < NO_EMAIL else f"person{i:06d}@example.com"
        self.phone = f"+3361{i:07d}" if rng.random() < 0.4 else None
        self.token = f"push-{i:06d}-{rng.randrange(1 << 30):08x}" if rng.random() < 0.3 else None
        self.network = rng.choice(NETWORKS)
        self.handle = f"@person{i}" if rng.random() < 0.5 else None
        self.favourite = rng.choice(CATEGORIES)
        city, country = rng.choice(CITIES)
        self.where = {"timezone": rng.choice(TIMEZONES), "ip": "127.0.0.1",
                      "location": {"city": city, "country": country}}
        self.will_sign_up = rng.random() < SIGNS_UP
        self.signed_up = False
        self.mailable = True  # no newsletter after an unsubscribe, spam report or hard bounce
        self.left: set[int] = set()  # unsubscribe groups left
        self.t = 0.0  # set by `live`, then only moves forward
        self.out: list[Generated] = []

    def live(self) -> list[Generated]:
        rng = self.rng
        visit = rng.uniform(0.15, 0.6)
        days = [START + day * DAY for day in range(self.gen.days)]
        if rng.random() < RETURNING:
            first = START - round(rng.uniform(*EARLIER)) * DAY
            days = [first + day * DAY for day in range(rng.randint(*STINT))] + days
        self.t = days[0]
        for day_start in days:
            self.t = max(self.t, day_start + rng.uniform(7, 20) * 3600)
            if rng.random() < visit:
                self._session()
            if self.signed_up and self.email and self.mailable and rng.random() < 0.4:
                self._newsletter()
            if self.signed_up and self.handle and rng.random() < 0.1:
                self._social(rng.choice(["like", "comment", "mention", "share", "message"]))
        return self.out

    def _session(self) -> None:
        rng = self.rng
        device = self.shared if self.shared and rng.random() < 0.4 else self.own
        ids: dict[str, str] = {"anonymousId": device}
        if self.signed_up and rng.random() < 0.7:  # logs in again
            ids["userId"] = self.user
            self._seg("identify", ids)
        for _ in range(rng.randint(1, 4)):
            page = rng.choice(PAGES).format(c=self.favourite)
            self._seg("page", ids, name=page,
                      properties={"path": page, "url": f"https://shop.example{page}"})
        if rng.random() < 0.3:
            self._seg("track", ids, event="Products Searched",
                      properties={"query": rng.choice(SEARCHES)})
        for _ in range(rng.randint(1, 3)):
            self._seg("track", ids, event="Product Viewed", properties=self._product())
        if not self.signed_up and self.will_sign_up and rng.random() < 0.35:
            self._sign_up(ids)
        elif self.signed_up and rng.random() < 0.08:
            self._consent_change(ids)
        if rng.random() < 0.3:
            product = self._product()
            self._seg("track", ids, event="Product Added", properties=product)
            if rng.random() < 0.5:
                self._seg("track", ids, event="Order Completed", properties={
                    "order_id": self.gen.next_id("order"), "revenue": product["price"],
                    "products": [product]})
            else:
                self.t += 3600  # walks away from the cart

    def _sign_up(self, ids: dict[str, str]) -> None:
        rng = self.rng
        ids["userId"] = self.user
        traits: dict[str, Any] = {
            "name": f"Person {self.user}",
            "consent": {"email": rng.random() < 0.85, "sms": rng.random() < 0.4,
                        "push": rng.random() < 0.5},
        }
        for key, value in (("email", self.email), ("phone", self.phone),
                           ("push_token", self.token)):
            if value:
                traits[key] = value
        if self.handle:
            traits["social_handles"] = {self.network: self.handle}
        self._seg("identify", ids, traits=traits, consent={
            "Marketing": rng.random() < 0.9, "Personalization": True})
        self._seg("track", ids, event="Signed Up", properties={"method": "email"})
        self.signed_up = True

    def _consent_change(self, ids: dict[str, str]) -> None:
        """Consent withdrawn (mostly) or given again, in traits or in `context.consent`."""
        rng = self.rng
        granted = rng.random() < 0.3
        ids["userId"] = self.user
        if rng.random() < 0.5:
            self._seg("identify", ids, traits={"consent": {rng.choice(["email", "sms", "push"]):
                                                           granted}})
        else:
            self._seg("identify", ids, consent={"Marketing": granted})

    def _newsletter(self) -> None:
        rng = self.rng
        group = rng.choice(GROUPS)
        if group in self.left:
            if rng.random() < 0.2:
                self.left.discard(group)
                self._mail("group_resubscribe", asm_group_id=group)
            return
        self._mail("delivered", asm_group_id=group)
        if rng.random() < 0.01:
            self._mail("bounce", type="bounce", reason="550 mailbox unavailable")
            self.mailable = False
            return
        if rng.random() < 0.5:
            self._mail("open", asm_group_id=group)
            if rng.random() < 0.4:
                self._mail("click", asm_group_id=group,
                           url=f"https://shop.example/category/{self.favourite}")
        withdraw = rng.random()
        if withdraw < 0.015:
            self._mail("unsubscribe", asm_group_id=group)
            self.mailable = False
        elif withdraw < 0.022:
            self._mail("spamreport", asm_group_id=group)
            self.mailable = False
        elif withdraw < 0.04:
            self._mail("group_unsubscribe", asm_group_id=group)
            self.left.add(group)

    def _product(self) -> dict[str, Any]:
        rng = self.rng
        category = self.favourite if rng.random() < 0.7 else rng.choice(CATEGORIES)
        return {"product_id": f"sku-{category}-{rng.randrange(50)}", "category": category,
                "price": round(rng.uniform(10, 300), 2)}

    def _seg(self, kind: str, ids: dict[str, str], consent: dict[str, bool] | None = None,
             **fields: object) -> None:
        self.t += self.rng.uniform(5, 240)
        context: dict[str, Any] = dict(self.where)
        if consent is not None:
            context["consent"] = {"categoryPreferences": consent}
        call = {"messageId": self.gen.next_id("msg"), "type": kind, "timestamp": iso(self.t),
                "context": context, **ids, **fields}
        self.out.append(Generated(self.t, "clickstream", orjson.dumps(call)))

    def _mail(self, event: str, **fields: object) -> None:
        self.t += self.rng.uniform(60, 3600)
        ev = {"event": event, "email": self.email, "timestamp": int(self.t),
              "sg_event_id": self.gen.next_id("sg"), "sg_message_id": self.gen.next_id("sgm"),
              "category": ["newsletter"], **fields}
        self.out.append(Generated(self.t, "email", orjson.dumps(ev)))

    def _social(self, action: str) -> None:
        self.t += self.rng.uniform(600, 7200)
        ev = {"event_id": self.gen.next_id("soc"), "network": self.network, "action": action,
              "handle": self.handle, "timestamp": iso(self.t), "post_id": self.gen.next_id("post"),
              "text": "Love the new collection @kairos" if action == "mention" else None}
        self.out.append(Generated(self.t, "social", orjson.dumps(ev)))

