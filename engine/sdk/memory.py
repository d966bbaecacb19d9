"""A rule's memory for one contact, as a rule sees it: its counters, free data, keyed stores.

The memory itself (`RuleMemory`) is part of the contact's state and bounded like the rest of it:
free `data` keeps at most `MAX_MEMORY_DATA` keys (the first added go first), and a keyed
store (`ctx.memory.keyed("views", ttl=14 * DAY, max_keys=50)`) drops entries older than its
`ttl` whenever it is read or written and the oldest beyond `max_keys`. A keyed value is kept
as msgpack gives it back (`stored`: a tuple becomes a list), so a rule reads the same value
from a state kept in memory as from one decoded from storage: a replay decides alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from engine.model.state import RuleMemory

__all__ = ["MAX_KEYED_KEYS", "MAX_KEYED_STORES", "MAX_MEMORY_DATA", "Keyed", "Memory",
           "bound_data", "stored"]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode

MAX_MEMORY_DATA = 100
MAX_KEYED_STORES = 8  # keyed stores per rule and contact
MAX_KEYED_KEYS = 500  # the largest `max_keys` a keyed store may ask for


class Memory:
    """This rule's memory for this contact: `step`, `fires`, `last_fired`, `entered`, `data`,
    `remember` and `keyed`, at the decision time `now`."""

    __slots__ = ("_mem", "_now", "_rule_id")

    def __init__(self, mem: RuleMemory, now: float, rule_id: str) -> None:
        self._mem, self._now, self._rule_id = mem, now, rule_id

    @property
    def step(self) -> int:
        return self._mem.step

    @step.setter
    def step(self, value: int) -> None:
        self._mem.step = value

    @property
    def fires(self) -> int:
        """How often the rule's actions were chosen for this contact (the engine counts)."""
        return self._mem.fires

    @property
    def last_fired(self) -> float | None:
        return self._mem.last_fired

    @property
    def entered(self) -> float | None:
        """When the contact last entered the rule's flow (what `reentry` counts from)."""
        return self._mem.entered

    @entered.setter
    def entered(self, value: float | None) -> None:
        self._mem.entered = value

    @property
    def data(self) -> dict[str, Any]:
        """Free data, at most `MAX_MEMORY_DATA` keys once the rule has run."""
        return self._mem.data

    def remember(self, key: str, value: Any) -> Any:
        """Keep `value` under `key`; return the value it replaces (None the first time), so a
        rule reacts to a change: `before = ctx.memory.remember("zone", zone)`."""
        return self._mem.remember(key, value)

    def keyed(self, name: str, *, ttl: float, max_keys: int = 50) -> Keyed:
        """A store of values by key (a product id, a category) whose entries expire after
        `ttl` seconds and of which the newest `max_keys` are kept."""
        if ttl <= 0 or not 0 < max_keys <= MAX_KEYED_KEYS:
            raise ValueError(f"rule {self._rule_id!r}: keyed({name!r}) needs ttl > 0 and "
                             f"1 <= max_keys <= {MAX_KEYED_KEYS}, got {ttl}, {max_keys}")
        stores = self._mem.keyed
        entries = stores.get(name)
        if entries is None:
            if len(stores) >= MAX_KEYED_STORES:
                raise ValueError(f"rule {self._rule_id!r}: at most {MAX_KEYED_STORES} keyed "
                                 f"stores per rule, {name!r} would be one more")
            entries = stores[name] = {}
        return Keyed(entries, self._now, ttl, max_keys)


class Keyed:
    """Values by key, each with the time it was last set or touched; expired entries are
    dropped on every read and write, the oldest beyond `max_keys` on every write. Keys are
    text (a number is kept as its text)."""

    __slots__ = ("_entries", "_max_keys", "_now", "_ttl")

    def __init__(
        self, entries: dict[str, tuple[float, Any]], now: float, ttl: float, max_keys: int
    ) -> None:
        self._entries, self._now, self._ttl, self._max_keys = entries, now, ttl, max_keys
        self._expire()

    def get(self, key: str | int, default: Any = None) -> Any:
        entry = self._entries.get(str(key))
        return default if entry is None else entry[1]

    def at(self, key: str | int) -> float | None:
        """When `key` was last set or touched, or None."""
        entry = self._entries.get(str(key))
        return None if entry is None else entry[0]

    def set(self, key: str | int, value: Any) -> None:
        self._put(str(key), stored(value))

    def touch(self, key: str | int) -> None:
        """Mark `key` seen now: its value kept (None for a new key), its expiry restarted."""
        self._put(str(key), self.get(key))

    def pop(self, key: str | int, default: Any = None) -> Any:
        entry = self._entries.pop(str(key), None)
        return default if entry is None else entry[1]

    def items(self) -> list[tuple[str, Any]]:
        """The live entries, the least recently set or touched first."""
        return [(k, v) for k, (_, v) in sorted(self._entries.items(), key=_age)]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str | int) and str(key) in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter([k for k, _ in self.items()])

    def _put(self, key: str, value: Any) -> None:
        entries = self._entries
        entries.pop(key, None)
        entries[key] = (self._now, value)
        self._expire()
        while len(entries) > self._max_keys:
            del entries[min(entries.items(), key=_age)[0]]

    def _expire(self) -> None:
        horizon = self._now - self._ttl
        stale = [k for k, (at, _) in self._entries.items() if at <= horizon]
        for k in stale:
            del self._entries[k]


def _age(item: tuple[str, tuple[float, Any]]) -> tuple[float, str]:
    """Oldest first; the key breaks a tie, so every process evicts the same entry."""
    key, (at, _) = item
    return at, key


def bound_data(mem: RuleMemory) -> None:
    """Free data beyond `MAX_MEMORY_DATA` keys loses the first added (a dict keeps that order,
    msgpack too)."""
    data = mem.data
    if len(data) > MAX_MEMORY_DATA:
        for key in list(data)[:len(data) - MAX_MEMORY_DATA]:
            del data[key]


def stored(value: Any) -> Any:
    """`value` as a state decoded from storage holds it: what a rule reads back is the same
    whether its contact's state was cached or decoded (raises on what msgpack cannot hold)."""
    return _decode(_encode(value))
