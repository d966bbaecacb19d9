"""What the `kairos` command prints when a command fails: one line a person can act on.

`kairos <command>: <what went wrong>; <what to do>`, exit code 1, instead of a traceback;
`kairos --debug ...` shows the traceback as well. The project's own errors (engine/errors.py)
already name the thing at fault; this adds what to do. Anything else is a bug, said so.
"""

from __future__ import annotations

from engine.errors import (
    BrokerUnreachable,
    DecodeError,
    KairosError,
    MissingData,
    PolicyError,
    RuleError,
    SettingsError,
    StateError,
)

__all__ = ["one_line"]

# What to do, for each kind of error (the first class the error is an instance of wins).
HINTS: tuple[tuple[type[BaseException], str], ...] = (
    (MissingData, ""),  # its message says what to give instead
    (RuleError, "fix the rule, then run `kairos rules check`"),
    (SettingsError, "fix that KAIROS_* setting"),
    (PolicyError, "fix the contact policy file (KAIROS_POLICY)"),
    (DecodeError, "fix the input at that field"),
    (StateError, "see docs/operations.md; `kairos explain --json` shows the contact"),
    (KairosError, "run again with --debug for the traceback"),
)


def one_line(command: str, exc: BaseException) -> str:
    """The line for `exc`, raised by `kairos <command>`."""
    return f"kairos {command}: {_what(exc)}"


def _what(exc: BaseException) -> str:
    if isinstance(exc, BrokerUnreachable) or type(exc).__module__.startswith("aiokafka"):
        text = str(exc)  # aiokafka's errors name their class themselves
        named = text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"
        return f"no Kafka broker answered ({named}); start one, or point KAIROS_BROKER at it"
    for kind, hint in HINTS:
        if isinstance(exc, kind):
            return f"{exc}; {hint}" if hint else str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or exc}: no such file or directory; check the path"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}; check the path and its permissions"
    return (f"{type(exc).__name__}: {exc}; this is a bug: run again with --debug and report "
            "the traceback")
