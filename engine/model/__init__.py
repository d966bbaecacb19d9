"""The data Kairos moves: events in, actions and dead letters out, messages between the keyed
steps, and the contact state with its codec. msgspec Structs with explicit schemas; no I/O."""

from engine.model.actions import CHANNELS, Action, action_id
from engine.model.deadletter import DeadLetter
from engine.model.events import Event, Source, decode, detect_source, iso
from engine.model.messages import ContactMessage, IdentityMessage
from engine.model.state import ContactState

__all__ = [
    "CHANNELS",
    "Action",
    "ContactMessage",
    "ContactState",
    "DeadLetter",
    "Event",
    "IdentityMessage",
    "Source",
    "action_id",
    "decode",
    "detect_source",
    "iso",
]
