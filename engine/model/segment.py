"""The Segment spec's six calls as they come in: `track`, `page`, `screen`, `identify`, `group`
and `alias`, with the context Kairos reads. Shapes and the checks that need no other call;
`engine/model/events.py` normalises them into the internal `Event`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

import msgspec

CallType = Literal["track", "page", "screen", "identify", "group", "alias"]
CALL_TYPES: tuple[str, ...] = get_args(CallType)
MAX_ID_LENGTH = 256
MAX_LABEL_LENGTH = 64  # a device type, a locale


class Location(msgspec.Struct, gc=False, kw_only=True, omit_defaults=True):
    city: str | None = None
    country: str | None = None
    region: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class SegmentConsent(msgspec.Struct, kw_only=True, omit_defaults=True):
    categoryPreferences: dict[str, bool] = {}


class SegmentDevice(msgspec.Struct, kw_only=True, omit_defaults=True):
    token: str | None = None  # the push token (APNs / FCM) of the device the call came from
    type: str | None = None  # ios, android, …: which push service the token is for

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) > 4 * MAX_ID_LENGTH:
            raise ValueError("push token too long - at `$.context.device.token`")
        _check_label(self.type, "$.context.device.type")


class Campaign(msgspec.Struct, gc=False, kw_only=True, frozen=True, omit_defaults=True):
    """The UTM parameters of the campaign that brought the call (`context.campaign`)."""

    name: str | None = None
    source: str | None = None
    medium: str | None = None
    term: str | None = None
    content: str | None = None

    def __post_init__(self) -> None:
        for field in ("name", "source", "medium", "term", "content"):
            value = getattr(self, field)
            if value is not None and len(value) > MAX_ID_LENGTH:
                raise ValueError(f"campaign {field} longer than {MAX_ID_LENGTH} characters "
                                 f"- at `$.context.campaign.{field}`")


class SegmentContext(msgspec.Struct, kw_only=True, omit_defaults=True):
    timezone: str | None = None
    location: Location | None = None
    ip: str | None = None
    userAgent: str | None = None
    consent: SegmentConsent | None = None
    device: SegmentDevice | None = None
    traits: dict[str, Any] | None = None  # the user's traits, where rudder-sdk-python puts them
    campaign: Campaign | None = None
    locale: str | None = None

    def __post_init__(self) -> None:
        _check_label(self.locale, "$.context.locale")


class SegmentCall(msgspec.Struct, kw_only=True):
    messageId: str
    type: CallType
    timestamp: datetime
    event: str | None = None
    name: str | None = None
    category: str | None = None
    userId: str | None = None
    anonymousId: str | None = None
    previousId: str | None = None  # alias: the id the user had before
    groupId: str | None = None  # group: the account the user belongs to
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    context: SegmentContext = msgspec.field(default_factory=SegmentContext)

    def __post_init__(self) -> None:
        if not self.messageId:
            raise ValueError("messageId must not be empty - at `$.messageId`")
        kind = self.type
        if kind == "alias":
            if not self.previousId:
                raise ValueError("an alias call needs a previousId - at `$.previousId`")
            if not self.userId:
                raise ValueError("an alias call needs a userId - at `$.userId`")
        elif not self.userId and not self.anonymousId:
            raise ValueError("one of userId or anonymousId is required - at `$.userId`")
        if kind == "track" and not self.event:
            raise ValueError("a track call needs an event name - at `$.event`")
        if kind == "group" and not self.groupId:
            raise ValueError("a group call needs a groupId - at `$.groupId`")


def _check_label(value: str | None, path: str) -> None:
    if value is not None and len(value) > MAX_LABEL_LENGTH:
        raise ValueError(f"longer than {MAX_LABEL_LENGTH} characters - at `{path}`")
