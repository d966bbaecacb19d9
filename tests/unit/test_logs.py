"""Logs and settings never carry personal data or secrets in clear."""

from __future__ import annotations

import io
import logging

from engine.config import Settings
from engine.obs.logs import RedactingFormatter, redact


def test_emails_and_phone_numbers_are_masked_in_every_formatted_record() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(RedactingFormatter("%(name)s %(message)s"))
    log = logging.getLogger("kairos.test-redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("bounce for %s, sms to %s, reason %s", "ada.lovelace@example.com",
                    "+33 6 12 34 56 78", "mailbox ada@example.org full")
    finally:
        log.removeHandler(handler)
    line = out.getvalue()
    assert "ada.lovelace@example.com" not in line and "a***@example.com" in line
    assert "ada@example.org" not in line and "a***@example.org" in line
    assert "12 34 56" not in line and "+3*****78" in line


def test_ids_times_and_offsets_are_left_alone() -> None:
    for text in ("contact c3f9a0 offset 1234567 at 2026-11-25T10:00:00Z topic t.clickstream[3]@42",
                 "2026-11-25 04:54:42,231 kairos.worker INFO restored 200000 records in 2.37s",
                 "epoch 1790000000123 partition 3 generation 12"):
        assert redact(text) == text


def test_settings_never_show_their_secrets() -> None:
    s = Settings(write_keys="wk_live_123", smtp_password="hunter2", webhook_secret="whsec",
                 sms_auth="Bearer tok", redis_url="redis://:redispw@127.0.0.1:6379/0")
    for shown in (repr(s), str(s), f"{s}"):
        for secret in ("wk_live_123", "hunter2", "whsec", "Bearer tok", "redispw"):
            assert secret not in shown
    assert "smtp_host='127.0.0.1'" in repr(s)
