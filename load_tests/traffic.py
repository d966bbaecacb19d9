"""Realistic load: Zipf-distributed contacts and a marketing event mix, deterministic by seed.

A few contacts are very active and most are rarely seen (Zipf, s = 1.1), as on real sites.
Each event is wire bytes for its own input topic, keyed by its best identifier, with its
message id carrying its sequence number so a latency probe can match actions to events.
Event times start at `start` (default: now) and advance by `spacing` seconds per event, so a
worker deciding on the wall clock sees fresh events, not ones whose actions already expired.
"""

from __future__ import annotations

import bisect
import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from engine.model.events import iso

MIX = (  # (weight, kind): page views dominate, purchases are rare
    (45, "page"), (18, "product_viewed"), (8, "product_added"), (3, "order"),
    (4, "identify"), (14, "email"), (8, "social"),
)
CATEGORIES = ("baby", "outdoor", "electronics", "home", "fashion", "books")
EMAIL_EVENTS = ("delivered", "open", "open", "click", "delivered")
SOCIAL = ("like", "like", "comment", "share", "mention", "follow")


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    topic: str  # clickstream | email | social
    key: bytes
    value: bytes


class Traffic:
    """An endless, seeded stream of `Record`s; take what a scenario needs with `take`.

    Successive `take`s continue the sequence, so a ramp's steps never reuse an event id.
    """

    def __init__(
        self,
        contacts: int = 50_000,
        seed: int = 42,
        zipf_s: float = 1.1,
        start: float | None = None,
        spacing: float = 0.01,
    ) -> None:
        self.rng = random.Random(seed)
        weights = [1.0 / (rank ** zipf_s) for rank in range(1, contacts + 1)]
        self._cdf = list(itertools.accumulate(weights))
        self._kinds = [k for w, k in MIX for _ in range(w)]
        self.next_seq = 0
        self.retime(time.time() if start is None else start, spacing)

    def retime(self, start: float, spacing: float) -> None:
        """Events from the next one on happen at `start`, then every `spacing` seconds."""
        self.start, self.spacing, self._origin = start, spacing, self.next_seq

    def contact(self) -> int:
        return bisect.bisect_left(self._cdf, self.rng.random() * self._cdf[-1])

    def take(self, n: int) -> list[Record]:
        return list(itertools.islice(self, n))

    def kind(self) -> str:
        return self.rng.choice(self._kinds)

    def __iter__(self) -> Iterator[Record]:
        while True:
            self.next_seq += 1
            yield self.record(self.next_seq - 1)

    def record(self, seq: int) -> Record:
        rng, c = self.rng, self.contact()
        kind = self.kind()
        at = self.start + (seq - self._origin) * self.spacing
        t = iso(at)
        user, email = f"load-u{c}", f"load{c}@example.com"
        category = CATEGORIES[c % len(CATEGORIES)] if rng.random() < 0.7 else rng.choice(CATEGORIES)
        if kind == "email":
            value = {"event": rng.choice(EMAIL_EVENTS), "email": email, "sg_event_id": f"L{seq}",
                     "timestamp": int(at), "category": ["newsletter"]}
            return Record(seq, "email", email.encode(), orjson.dumps(value))
        if kind == "social":
            value = {"event_id": f"L{seq}", "network": "twitter", "action": rng.choice(SOCIAL),
                     "handle": f"@load{c}", "timestamp": t}
            return Record(seq, "social", f"@load{c}".encode(), orjson.dumps(value))
        call: dict[str, object] = {"messageId": f"L{seq}", "userId": user, "timestamp": t}
        if kind == "page":
            call.update(type="page", name=rng.choice(["/", "/pricing", f"/category/{category}"]))
        elif kind == "identify":
            call.update(type="identify", traits={"email": email, "consent": {"email": True}})
        else:
            event = {"product_viewed": "Product Viewed", "product_added": "Product Added",
                     "order": "Order Completed"}[kind]
            product = {"product_id": f"sku-{category}-{rng.randrange(100)}", "category": category}
            props = {"products": [product], "order_id": f"o{seq}"} if kind == "order" else product
            call.update(type="track", event=event, properties=props)
        return Record(seq, "clickstream", user.encode(), orjson.dumps(call))


def sequence_of(trigger_event_id: str) -> int | None:
    """The load sequence number an action's trigger came from (`L<seq>`), or None."""
    if trigger_event_id.startswith("L") and trigger_event_id[1:].isdigit():
        return int(trigger_event_id[1:])
    return None


# --- the realistic multi-day history ----------------------------------------------------------

REALISTIC_DAYS = 7  # about 24 events per person: a week, and earlier stints of returning customers


def realistic(contacts: int, days: int = REALISTIC_DAYS, seed: int = 7) -> list[Record]:
    """`kairos generate --realistic`'s history (people over `days` days: returning visits,
    logins on shared devices, carts and orders, email and social, timers in every family) as
    records keyed by their best identifier, as the collector keys them."""
    from engine.ops.realistic import RealisticGenerator

    out = []
    for seq, g in enumerate(RealisticGenerator(contacts, seed=seed, days=days)):
        body = orjson.loads(g.value)
        key = (body.get("userId") or body.get("anonymousId") or body.get("email")
               or body.get("handle") or "")
        out.append(Record(seq, g.source, str(key).encode(), g.value))
    return out


def write_history(path: str, records: list[Record]) -> None:
    """Records as a JSON-lines history for `kairos replay`."""
    with open(path, "wb") as f:
        f.writelines(r.value + b"\n" for r in records)
