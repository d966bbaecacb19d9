"""The errors Kairos raises on purpose, under one root a caller can catch.

Each message names the thing at fault (setting, file, rule id, field path, contact, topic) and,
where there is one, what to do about it. Errors that are also `ValueError` or `RuntimeError`
stay so, so callers written against the built-in types keep working.
"""

from __future__ import annotations

__all__ = [
    "BrokerUnreachable",
    "CommitError",
    "DecodeError",
    "KairosError",
    "MissingData",
    "PolicyError",
    "RuleError",
    "RuleFailed",
    "SettingsError",
    "StateError",
]


class KairosError(Exception):
    """The root of every error Kairos raises deliberately."""


class SettingsError(KairosError, ValueError):
    """A `KAIROS_*` setting has a value Kairos cannot use; the message names the variable."""


class DecodeError(KairosError, ValueError):
    """An input message is not of its source's shape; the message names the field path."""


class RuleError(KairosError, ValueError):
    """A rule module, a declarative rule or a rule bundle is wrong; names the file and rule."""


class RuleFailed(KairosError, RuntimeError):
    """A rule raised while the testing kit ran it; names the rule, its file and line."""


class PolicyError(KairosError, ValueError):
    """A contact policy file is wrong; the message names the file and the field path."""


class MissingData(KairosError, FileNotFoundError):
    """A data directory a command reads is not there; the message says what to give instead."""


class StateError(KairosError, RuntimeError):
    """A contact's state cannot be brought to a consistent point (a runaway merge chain)."""


class BrokerUnreachable(KairosError):
    """The broker did not answer in time (`KAIROS_BROKER_TIMEOUT`): the worker starts over."""


class CommitError(KairosError, RuntimeError):
    """Offsets could not be committed; the worker does not commit past unacknowledged output."""
