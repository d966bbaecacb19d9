"""Inbound wire schemas and the one internal event they normalise into.

Each source keeps the shape its users already produce (Segment calls, in
`engine/model/segment.py`; email-provider webhook events; a small social shape); the core only
ever sees `Event`. Unknown fields are tolerated, wrong types are rejected with the JSON path of
the field at fault.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, TypeVar, get_args

import msgspec

from engine.errors import DecodeError
from engine.model.bounds import check_depth
from engine.model.segment import MAX_ID_LENGTH, Campaign, Location, SegmentCall

Source = Literal["clickstream", "email", "social", "outcome", "catalogue"]
T = TypeVar("T")

EmailEventName = Literal[
    "processed",
    "delivered",
    "open",
    "click",
    "bounce",
    "dropped",
    "deferred",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
]
SocialAction = Literal["like", "comment", "share", "mention", "follow", "message"]
EMAIL_EVENTS: tuple[str, ...] = get_args(EmailEventName)
SOCIAL_ACTIONS: tuple[str, ...] = get_args(SocialAction)


# --- email: provider event webhook ----------------------------------------------------------


class EmailWebhookEvent(msgspec.Struct, kw_only=True):
    event: EmailEventName
    email: str
    timestamp: int | float
    sg_event_id: str
    sg_message_id: str | None = None
    category: str | list[str] | None = None
    url: str | None = None
    reason: str | None = None
    type: str | None = None
    asm_group_id: int | None = None  # the unsubscribe group a (re)subscribe event is about
    kairos_action_id: str | None = None  # the custom arg our email connector sets
    # Set only by our own unsubscribe link: the contact it was signed for, so the event goes to
    # that contact whoever else the address may resolve to.
    kairos_contact_id: str | None = None

    def __post_init__(self) -> None:
        if "@" not in self.email:
            raise ValueError("not an email address - at `$.email`")
        if not self.sg_event_id:
            raise ValueError("sg_event_id must not be empty - at `$.sg_event_id`")


# --- social interactions --------------------------------------------------------------------


class SocialInteraction(msgspec.Struct, kw_only=True):
    event_id: str
    network: str
    action: SocialAction
    handle: str
    timestamp: datetime | int | float
    user_id: str | None = None
    email: str | None = None
    post_id: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if not self.event_id:
            raise ValueError("event_id must not be empty - at `$.event_id`")
        if not self.network or not self.handle:
            raise ValueError("network and handle must not be empty - at `$.handle`")


# --- outcomes of delivered actions (the closed loop) ------------------------------------------


class ActionOutcome(msgspec.Struct, kw_only=True):
    """What a connector reports about an action it handled; keyed by the action's contact."""

    outcome_id: str
    action_id: str
    contact_id: str
    channel: str
    action: str
    outcome: str  # sent, delivered, opened, clicked, failed, bounced, ignored, expired, held_out
    timestamp: datetime
    attempts: int = 0
    reason: str | None = None
    permanent: bool = False  # failed: it never will succeed on this channel (a fallback's cue)


# --- the internal event ---------------------------------------------------------------------


class Event(msgspec.Struct, gc=False, kw_only=True, frozen=True, omit_defaults=True):
    """One thing a contact did, whatever channel it came from.

    `kind` is the source-level type (a Segment call's type, email, social, outcome) and `name`
    the specific action (track event name, page or screen name, email event, social action):
    rules are indexed on the pair. `traits` are the person's, except on a `group` call, where
    they are the account's (`group_id`).
    """

    event_id: str
    source: Source
    kind: str
    name: str
    time: float
    user_id: str | None = None
    anonymous_id: str | None = None
    email: str | None = None
    handle: str | None = None
    categories: tuple[str, ...] = ()
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    timezone: str | None = None
    location: Location | None = None
    consent: dict[str, bool] | None = None
    url: str | None = None
    reason: str | None = None
    contact_id: str | None = None  # set when the sender knows it (outcomes, our unsubscribe links)
    device_token: str | None = None  # a push token the contact's device reported
    device_type: str | None = None  # the kind of that device (ios, android, …)
    previous_id: str | None = None  # alias: the earlier id, linked as a device (`anon:`)
    group_id: str | None = None  # group: the account joined
    campaign: Campaign | None = None
    locale: str | None = None

    @property
    def authenticated(self) -> bool:
        """Only clickstream calls carrying a userId come from a logged-in, verified session."""
        return self.source == "clickstream" and self.user_id is not None


def epoch_of(value: datetime | int | float) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


def check_time(t: float, path: str) -> float:
    # Year 1970..2200: outside that a timestamp is a unit mistake (ms for s) or garbage.
    if not 0 <= t < 7_258_118_400:
        raise DecodeError(f"timestamp out of range ({t}) - at `{path}`")
    return t


def check_ids(**ids: str | None) -> None:
    for name, value in ids.items():
        if value is not None and len(value) > MAX_ID_LENGTH:
            raise DecodeError(f"identifier longer than {MAX_ID_LENGTH} characters - at `$.{name}`")


def _categories(*values: Any) -> tuple[str, ...]:
    found: list[str] = []
    for v in values:
        items = v if isinstance(v, list) else [v]
        for item in items:
            if isinstance(item, str) and item and item not in found:
                found.append(item)
    return tuple(found)


def _segment_categories(call: SegmentCall) -> tuple[str, ...]:
    props = call.properties
    if call.category is None and "category" not in props and "products" not in props:
        return ()  # half the calls name no category: skip building the lists to look through
    products = props.get("products")
    product_cats = (
        [p.get("category") for p in products if isinstance(p, dict)]
        if isinstance(products, list)
        else []
    )
    return _categories(call.category, props.get("category"), product_cats)


def from_segment(call: SegmentCall) -> Event:
    check_ids(userId=call.userId, anonymousId=call.anonymousId, previousId=call.previousId,
               groupId=call.groupId)
    ctx, kind, traits = call.context, call.type, call.traits
    if ctx.traits and kind != "group":  # the top-level traits win a clash
        traits = {**ctx.traits, **traits}
    name = call.event if kind == "track" else (call.name or "")
    email = traits.get("email") if kind == "identify" else None
    device, url = ctx.device, call.properties.get("url")
    return Event(
        event_id=call.messageId,
        source="clickstream",
        kind=kind,
        name=name or "",
        time=check_time(epoch_of(call.timestamp), "$.timestamp"),
        user_id=call.userId,
        anonymous_id=call.anonymousId,
        email=email.strip().lower() if isinstance(email, str) and "@" in email else None,
        categories=_segment_categories(call),
        properties=call.properties,
        traits=traits,
        timezone=ctx.timezone,
        location=ctx.location,
        consent=dict(ctx.consent.categoryPreferences) if ctx.consent else None,
        url=url if isinstance(url, str) else None,
        device_token=(device.token or None) if device else None,
        device_type=(device.type or None) if device else None,
        previous_id=call.previousId,
        group_id=call.groupId,
        campaign=ctx.campaign,
        locale=ctx.locale or None,
    )


def from_email(ev: EmailWebhookEvent) -> Event:
    check_ids(email=ev.email, sg_event_id=ev.sg_event_id, kairos_contact_id=ev.kairos_contact_id)
    return Event(
        event_id=ev.sg_event_id,
        source="email",
        kind="email",
        name=ev.event,
        time=check_time(float(ev.timestamp), "$.timestamp"),
        contact_id=ev.kairos_contact_id,
        email=ev.email.strip().lower(),
        categories=_categories(ev.category),
        properties={
            k: v
            for k, v in (("sg_message_id", ev.sg_message_id), ("type", ev.type),
                         ("action_id", ev.kairos_action_id), ("asm_group_id", ev.asm_group_id))
            if v is not None
        },
        url=ev.url,
        reason=ev.reason,
    )


def from_social(ev: SocialInteraction) -> Event:
    check_ids(event_id=ev.event_id, handle=ev.handle, user_id=ev.user_id)
    props: dict[str, Any] = {}
    if ev.post_id:
        props["post_id"] = ev.post_id
    if ev.text:
        props["text"] = ev.text[:2000]
    return Event(
        event_id=ev.event_id,
        source="social",
        kind="social",
        name=ev.action,
        time=check_time(epoch_of(ev.timestamp), "$.timestamp"),
        user_id=ev.user_id,
        email=ev.email.strip().lower() if ev.email and "@" in ev.email else None,
        handle=social_handle(ev.network, ev.handle),
        categories=(ev.network,),
        properties=props,
    )


def from_outcome(o: ActionOutcome) -> Event:
    props: dict[str, Any] = {"action_id": o.action_id, "channel": o.channel, "action": o.action}
    if o.permanent:
        props["permanent"] = True
    return Event(
        event_id=o.outcome_id,
        source="outcome",
        kind="outcome",
        name=o.outcome,
        time=check_time(epoch_of(o.timestamp), "$.timestamp"),
        contact_id=o.contact_id,
        properties=props,
        reason=o.reason,
    )


def social_handle(network: str, handle: str) -> str:
    """One spelling per account, so traits and webhooks name the same handle."""
    return f"{network.strip().lower()}:{handle.strip().lstrip('@').lower()}"


_segment_decoder = msgspec.json.Decoder(SegmentCall)
_email_decoder = msgspec.json.Decoder(EmailWebhookEvent)
_social_decoder = msgspec.json.Decoder(SocialInteraction)
_outcome_decoder = msgspec.json.Decoder(ActionOutcome)


def decode(source: Source, raw: bytes) -> Event:
    """Bytes from one of the input topics to an `Event`, or `DecodeError` saying why not."""
    if source == "clickstream":
        return strictly(lambda: from_segment(_segment_decoder.decode(raw)), raw)
    if source == "email":
        return strictly(lambda: from_email(_email_decoder.decode(raw)), raw)
    if source == "outcome":
        return strictly(lambda: from_outcome(_outcome_decoder.decode(raw)), raw)
    if source == "catalogue":
        raise DecodeError("a catalogue record names an item, not a contact's event")
    return strictly(lambda: from_social(_social_decoder.decode(raw)), raw)


def strictly(decoding: Callable[[], T], raw: bytes) -> T:
    """Run one input's decoding of `raw`; whatever is wrong with it becomes a `DecodeError`."""
    check_depth(raw)
    try:
        return decoding()
    except msgspec.ValidationError as exc:
        raise DecodeError(f"schema violation: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    except RecursionError:  # msgspec's guard against a stack overflow on hostile nesting
        raise DecodeError("invalid JSON: nested too deep") from None
    except (OverflowError, ValueError) as exc:  # datetime out of range, post-init checks
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"schema violation: {exc}") from None


def detect_source(raw: bytes) -> Source:
    """Which input shape a JSON object is, by the id field only its shape has.

    A byte search, not a parse: mixed histories are read at full speed, and a line that is not
    JSON at all goes to the clickstream decoder, which names what is wrong with it.
    """
    if b'"messageId"' in raw:
        return "clickstream"
    if b'"outcome_id"' in raw:
        return "outcome"
    if b'"sg_event_id"' in raw:
        return "email"
    if b'"event_id"' in raw:
        return "social"
    if b'"item_id"' in raw:
        return "catalogue"
    return "clickstream"


def epoch(iso_time: str) -> float:
    """Seconds since the epoch of an ISO 8601 time such as `iso` writes (`Z` or an offset)."""
    return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()


def iso(t: float) -> str:
    """UTC, milliseconds, `Z`: what `datetime.fromtimestamp(t, UTC).isoformat` gives, at a
    fraction of its cost (every action carries three of these)."""
    frac, whole = math.modf(t)
    us = round(frac * 1e6)  # half to even, as datetime rounds
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    elif us < 0:
        whole, us = whole - 1, us + 1_000_000
    day, second = divmod(int(whole), 86_400)
    hour, second = divmod(second, 3_600)
    minute, second = divmod(second, 60)
    return f"{_iso_day(day)}T{hour:02d}:{minute:02d}:{second:02d}.{us // 1000:03d}Z"


@lru_cache(maxsize=4096)
def _iso_day(day: int) -> str:
    """The date of a day since the epoch: cached per day, since times within a decision (and a
    replay's neighbouring decisions) share one, where a cache per second mostly missed."""
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")
