"""Signed link tokens, and the unsubscribe headers marketing email carries."""

from __future__ import annotations

import base64
from email import message_from_bytes
from typing import Any

import orjson
import pytest

from connectors.channels.email_smtp import EmailChannel
from connectors.intake import Rejected
from connectors.links import Signer
from connectors.unsubscribe import PURPOSE, UnsubscribeLinks
from engine.config import Settings
from engine.errors import SettingsError
from engine.model.actions import Action
from engine.testing.kafka import LINKS

SECRET = "unit-test-link-secret-0123"
NOW = 1_800_000_000.0
signer = Signer(SECRET)


def payload_of(token: str) -> list[Any]:
    part = token.split(".")[0]
    decoded: list[Any] = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def with_payload(token: str, fields: list[Any]) -> str:
    """The token's signature on another payload: what a forger who edits a link produces."""
    raw = base64.urlsafe_b64encode(orjson.dumps(fields)).rstrip(b"=").decode()
    return f"{raw}.{token.split('.')[1]}"


def test_a_token_verifies_for_its_purpose_until_it_expires() -> None:
    token = signer.sign("click", "c1", "https://shop.example/p/1", NOW + 60)
    link = signer.verify("click", token, NOW + 60)
    assert (link.subject, link.data, link.expires) == ("c1", "https://shop.example/p/1",
                                                         int(NOW + 60))
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_an_expired_token_is_refused_naming_when() -> None:
    token = signer.sign(PURPOSE, "c1", "a@example.com\n", NOW)
    with pytest.raises(Rejected, match=r"expired at 2027-01-15T08:00:00") as caught:
        signer.verify(PURPOSE, token, NOW + 1)
    assert (caught.value.status, caught.value.code) == (401, "expired_token")


def test_a_token_for_one_purpose_is_refused_for_another() -> None:
    token = signer.sign("click", "c1", "https://shop.example/", NOW + 60)
    with pytest.raises(Rejected, match="this link is for 'click', not 'unsubscribe'") as caught:
        signer.verify(PURPOSE, token, NOW)
    assert caught.value.code == "wrong_purpose"


@pytest.mark.parametrize("edit", [
    lambda f: ["unsubscribe", "c2", f[2], f[3]],  # another contact
    lambda f: [f[0], f[1], "a@example.com\nnewsletter", f[3]],  # another group
    lambda f: [f[0], f[1], f[2], f[3] + 86400 * 365],  # a later expiry
    lambda f: ["click", f[1], f[2], f[3]],  # another purpose
])
def test_an_edited_token_is_refused(edit: Any) -> None:
    token = signer.sign(PURPOSE, "c1", "a@example.com\n", NOW + 60)
    with pytest.raises(Rejected, match="signature does not match") as caught:
        signer.verify(PURPOSE, with_payload(token, edit(payload_of(token))), NOW)
    assert (caught.value.status, caught.value.code) == (401, "bad_signature")


def test_a_token_signed_with_another_secret_is_refused() -> None:
    forged = Signer("someone-elses-secret-xyz").sign(PURPOSE, "c1", "a@example.com\n", NOW + 60)
    with pytest.raises(Rejected, match="not issued by us"):
        signer.verify(PURPOSE, forged, NOW)
    token = signer.sign(PURPOSE, "c1", "a@example.com\n", NOW + 60)
    with pytest.raises(Rejected, match="signature does not match"):
        signer.verify(PURPOSE, token[:-2] + ("AA" if not token.endswith("AA") else "BB"), NOW)


@pytest.mark.parametrize("token", ["", "nodot", ".sig", "x" * 5000])
def test_what_is_not_a_token_is_a_400(token: str) -> None:
    with pytest.raises(Rejected, match=r"not a link token") as caught:
        signer.verify(PURPOSE, token, NOW)
    assert caught.value.status == 400


def test_a_short_or_missing_secret_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="KAIROS_LINK_SECRET must be at least 16"):
        Signer("short")


def action(action_class: str = "marketing", group: str | None = None,
           contact: str = "c1") -> Action:
    extra: dict[str, Any] = {"group": group} if group else {}
    return Action(action_id="a1", contact_id=contact, channel="email", action="cart-reminder",
                  rule_id="r", rule_version=1, score=1.0, reason="r", trigger_event_id="e1",
                  event_time="", decided_at="", expires_at="", recipient="ada@example.com",
                  action_class=action_class, **extra)


def channel() -> EmailChannel:
    return EmailChannel(Settings.from_env({**LINKS, "KAIROS_LINK_SECRET": SECRET,
                                           "KAIROS_PUBLIC_URL": "https://in.example.com/",
                                           "KAIROS_UNSUBSCRIBE_DOMAIN": "mail.example.com"}))


def test_marketing_email_carries_one_click_headers_and_the_link_in_its_body() -> None:
    msg = message_from_bytes(channel().render(action(group="newsletter")).as_bytes())
    token = str(msg["List-Unsubscribe"]).split("/v1/unsubscribe/")[1].split(">")[0]
    assert str(msg["List-Unsubscribe"]) == (f"<https://in.example.com/v1/unsubscribe/{token}>, "
                                            f"<mailto:unsubscribe+{token}@mail.example.com>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = msg.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert f"https://in.example.com/v1/unsubscribe/{token}".encode() in body
    link = Signer(SECRET).verify(PURPOSE, token, NOW)
    assert (link.subject, link.data) == ("c1", "ada@example.com\nnewsletter")


def test_without_a_group_the_token_covers_the_whole_channel() -> None:
    token = UnsubscribeLinks(signer, "https://in.example.com", "m.example.com", 60).token(action())
    assert signer.verify(PURPOSE, token, NOW).data == "ada@example.com\n"


@pytest.mark.parametrize("kind", ["transactional", "mandatory"])
def test_transactional_and_mandatory_email_carry_no_unsubscribe(kind: str) -> None:
    msg = channel().render(action(kind))
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert "/v1/unsubscribe/" not in msg.get_content()


def test_the_template_places_the_link_where_it_wants(tmp_path: Any) -> None:
    (tmp_path / "cart-reminder.txt").write_text("Subject: Hi\n\nBye: $unsubscribe_url (end)\n")
    settings = Settings.from_env({**LINKS, "KAIROS_EMAIL_TEMPLATES": str(tmp_path)})
    text = EmailChannel(settings).render(action()).get_content()
    assert text.startswith("Bye: http://127.0.0.1/v1/unsubscribe/") and "(end)" in text
    assert text.count("/v1/unsubscribe/") == 1


@pytest.mark.parametrize(("env", "message"), [
    ({"KAIROS_PUBLIC_URL": ""}, "KAIROS_PUBLIC_URL must be the collector's https://"),
    ({"KAIROS_PUBLIC_URL": "http://in.example.com"}, "KAIROS_PUBLIC_URL must be"),
    ({"KAIROS_UNSUBSCRIBE_DOMAIN": ""}, "KAIROS_UNSUBSCRIBE_DOMAIN must name"),
    ({"KAIROS_LINK_SECRET": ""}, "KAIROS_LINK_SECRET must be at least"),
    ({"KAIROS_UNSUBSCRIBE_DAYS": "0"}, "KAIROS_UNSUBSCRIBE_DAYS must be positive"),
])
def test_email_does_not_start_without_its_unsubscribe_settings(
    env: dict[str, str], message: str,
) -> None:
    with pytest.raises(SettingsError, match=message):
        EmailChannel(Settings.from_env({**LINKS, **env}))
