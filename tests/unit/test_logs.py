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


def test_a_message_repeated_per_request_is_one_line_per_interval_with_its_count() -> None:
    from engine.obs.logs import RepeatFilter, suppressed

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    repeats = RepeatFilter(interval=0.2)
    handler.addFilter(repeats)
    log = logging.getLogger("aiokafka.test-repeats")
    log.addHandler(handler)
    log.propagate = False
    held_before = suppressed["aiokafka.test-repeats"]
    try:
        for node in range(1000):
            log.error("Unable connect to node with id %s", node)
        log.warning("Broker lost")  # another message is not held back by the first
        repeats.interval = 0.0
        log.error("Unable connect to node with id %s", 1000)
    finally:
        log.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Unable connect to node with id 0"
    assert lines[1] == "Broker lost"
    assert lines[2].startswith("Unable connect to node with id 1000 (and 999 more like it in ")
    assert len(lines) == 3
    assert suppressed["aiokafka.test-repeats"] - held_before == 999


def test_kairos_own_lines_are_never_held_back() -> None:
    from engine.obs.logs import RepeatFilter

    repeats = RepeatFilter(interval=60)
    records = [logging.LogRecord("kairos.worker", logging.INFO, __file__, 1,
                                 "restored %d %s records", (n, "contacts"), None)
               for n in range(3)]
    assert all(repeats.filter(r) for r in records)
