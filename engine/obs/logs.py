"""Logging for every Kairos process: one format, and no personal data in clear.

Log lines can quote what a contact sent (a dead letter's reason, a provider's error). Emails
and phone numbers in any record are masked when it is formatted, whoever logged it, so logs can
be shipped and kept without becoming a copy of the contact base.
"""

from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# International numbers, as phone traits are kept (E.164, maybe spaced): `+` then 8-15 digits.
PHONE = re.compile(r"(?<![\w+])(\+\d)[\d ().-]{6,18}(\d{2})(?![\w-])")
FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def redact(text: str) -> str:
    """`ada@example.com` -> `a***@example.com`; `+33 6 12 34 56 78` -> `+3*****78`."""
    text = EMAIL.sub(r"\1***@\2", text)
    return PHONE.sub(r"\1*****\2", text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup(level: int = logging.INFO) -> None:
    """Root handler on stderr with redaction; idempotent."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, RedactingFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
