"""CloudEvents headers on actions (binary content mode): consumers route without the body.

The record on `next-best-actions` stays what it was, the action JSON keyed by the contact id;
its headers say what it is: `ce_id` the action id, `ce_type` `io.kairos.action.<channel>`,
`ce_source` `kairos/<app id>/<rule id>`, `ce_subject` the contact id, `ce_time` when it was
decided, `ce_specversion` 1.0 and `content-type: application/json` (docs/operations.md).
A shadow rule's would-be actions on `kairos-shadow-actions` carry the same headers, their type
`io.kairos.shadow-action.<channel>`.

The `cloudevents` library's Kafka binding renders them. It costs about 25 µs an action, twenty
times encoding the action itself, so it renders one template per (channel, rule), where only
the id, subject and time differ, and each action fills those three in. The unit tests hold the
result equal to the library's own output.
"""

from __future__ import annotations

from datetime import datetime

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from engine.model import actions as action_codec
from engine.model.actions import Action

__all__ = ["CONTENT_TYPE", "SHADOW_TYPE_PREFIX", "TYPE_PREFIX", "ActionHeaders", "Headers",
           "event_of", "library_headers"]

TYPE_PREFIX = "io.kairos.action."
SHADOW_TYPE_PREFIX = "io.kairos.shadow-action."
CONTENT_TYPE = "application/json"
Headers = list[tuple[str, bytes]]
_FORMAT = JSONFormat()


def event_of(action: Action, app_id: str, type_prefix: str = TYPE_PREFIX) -> CloudEvent:
    """The action as the library's CloudEvent, its data the action JSON as sent."""
    return CloudEvent({
        "id": action.action_id,
        "type": type_prefix + action.channel,
        "source": f"kairos/{app_id}/{action.rule_id}",
        "subject": action.contact_id,
        "time": datetime.fromisoformat(action.decided_at),
        "datacontenttype": CONTENT_TYPE,
    }, action_codec.encode(action))


def _no_key(_: BaseCloudEvent) -> None:
    """The record's key is the contact id, set by the worker, not a `partitionkey`."""


def library_headers(action: Action, app_id: str, type_prefix: str = TYPE_PREFIX) -> Headers:
    """The headers the library's binary mode gives `action`: the reference, at its cost."""
    event = event_of(action, app_id, type_prefix)
    return list(to_binary(event, _FORMAT, _no_key).headers.items())


def _time(decided_at: str) -> bytes:
    """`decided_at` (`…SS.mmmZ`, engine/model/events.py `iso`) as the binding renders that
    instant: in microseconds, or without a fraction on a whole second. Parsing it back into a
    datetime for the library would cost more than the rest of the headers together."""
    if decided_at.endswith(".000Z"):
        return (decided_at[:-5] + "Z").encode()
    return (decided_at[:-1] + "000Z").encode()


class ActionHeaders:
    """The headers of each action a worker sends, from one library-made template per
    (channel, rule); `type_prefix` tells actions and shadow actions apart."""

    def __init__(self, app_id: str, type_prefix: str = TYPE_PREFIX) -> None:
        self.app_id = app_id
        self.type_prefix = type_prefix
        self._templates: dict[tuple[str, str], tuple[Headers, int, int, int]] = {}

    def of(self, action: Action) -> Headers:
        template = self._templates.get((action.channel, action.rule_id))
        if template is None:
            made = library_headers(action, self.app_id, self.type_prefix)
            names = [name for name, _ in made]
            template = (made, names.index("ce_id"), names.index("ce_subject"),
                        names.index("ce_time"))
            self._templates[(action.channel, action.rule_id)] = template
        made, at_id, at_subject, at_time = template
        headers = made.copy()
        headers[at_id] = ("ce_id", action.action_id.encode())
        headers[at_subject] = ("ce_subject", action.contact_id.encode())
        headers[at_time] = ("ce_time", _time(action.decided_at))
        return headers
