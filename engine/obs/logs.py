"""Logging for every Kairos process: one format, and no personal data in clear.

Log lines can quote what a contact sent (a dead letter's reason, a provider's error). Emails
and phone numbers in any record are masked when it is formatted, whoever logged it, so logs can
be shipped and kept without becoming a copy of the contact base.

Client libraries log an error per failed request: with the broker away that is hundreds of
thousands of lines a minute. A repeat of the same message from the same client logger is let
through once per `REPEAT_INTERVAL` with the count of what was held back; `suppressed` keeps
the counts for the metrics. Kairos' own loggers are never held back: they log state changes
once by design, and operators (and tests) read them.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# International numbers, as phone traits are kept (E.164, maybe spaced): `+` then 8-15 digits.
PHONE = re.compile(r"(?<![\w+])(\+\d)[\d ().-]{6,18}(\d{2})(?![\w-])")
FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
OWN = "kairos"  # the root of Kairos' own loggers
REPEAT_INTERVAL = 30.0  # seconds between two lines of the same repeated message
suppressed: Counter[str] = Counter()  # logger name -> repeated lines held back


def redact(text: str) -> str:
    """`ada@example.com` -> `a***@example.com`; `+33 6 12 34 56 78` -> `+3*****78`."""
    text = EMAIL.sub(r"\1***@\2", text)
    return PHONE.sub(r"\1*****\2", text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RepeatFilter(logging.Filter):
    """Lets a client library's message (logger, level, format string) through once per
    `interval` seconds; Kairos' own (`kairos.*`) always."""

    def __init__(self, interval: float = REPEAT_INTERVAL) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, int, str], tuple[float, int]] = {}  # -> (shown at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == OWN or record.name.startswith(OWN + "."):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        shown = self._last.get(key)
        if shown is not None and now - shown[0] < self.interval:
            self._last[key] = (shown[0], shown[1] + 1)
            suppressed[record.name] += 1
            return False
        if shown is not None and shown[1] and not isinstance(record.args, dict):
            record.msg = f"{record.msg} (and {shown[1]} more like it in %.0fs)"
            record.args = (*(record.args or ()), now - shown[0])
        if len(self._last) > 10_000:  # messages with ids in their format string: keep it bounded
            self._last.clear()
        self._last[key] = (now, 0)
        return True


def setup(level: int = logging.INFO) -> None:
    """Root handler on stderr with redaction and repeats held back; idempotent."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, RedactingFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(FORMAT))
    handler.addFilter(RepeatFilter())
    root.addHandler(handler)
    root.setLevel(level)
