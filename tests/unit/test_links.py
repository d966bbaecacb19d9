"""Signed link tokens, and the unsubscribe headers marketing email carries."""

from __future__ import annotations

import base64
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

import orjson
import pytest

from connectors.channels.email_smtp import EmailChannel
from connectors.connect import library
from connectors.intake import Rejected
from connectors.links import Signer
from connectors.unsubscribe import PURPOSE, UnsubscribeLinks
from engine.config import Settings
from engine.errors import SettingsError
from engine.model.actions import Action
from engine.model.events import iso
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
                  event_time="", decided_at=iso(NOW), expires_at="", recipient="ada@example.com",
                  action_class=action_class, **extra)


@pytest.fixture
def templates(tmp_path: Any) -> Any:
    """A cart reminder whose text places the link itself, and whose HTML links it."""
    (tmp_path / "cart-reminder").mkdir()
    for name, text in (("email.subject", "Hi"),
                       ("email.txt", "Bye: {{ links.unsubscribe | default('none') }} (end)"),
                       ("email.html", "<a href=\"{{ links.unsubscribe | default('') }}\">x</a>")):
        (tmp_path / "cart-reminder" / name).write_text(text)
    return tmp_path


def channel(templates: Any) -> EmailChannel:
    settings = Settings.from_env({**LINKS, "KAIROS_LINK_SECRET": SECRET,
                                  "KAIROS_PUBLIC_URL": "https://in.example.com/",
                                  "KAIROS_UNSUBSCRIBE_DOMAIN": "mail.example.com",
                                  "KAIROS_TEMPLATES_DIR": str(templates)})
    return EmailChannel(settings, library(settings))


def text_of(msg: Any) -> str:
    return str(msg.get_body(("plain",)).get_content()).rstrip()


def test_marketing_email_carries_one_click_headers_and_the_link_in_its_body(templates: Any) -> None:
    msg = message_from_bytes(channel(templates).render(action(group="newsletter")).as_bytes(),
                             policy=email_policy.default)
    token = str(msg["List-Unsubscribe"]).split("/v1/unsubscribe/")[1].split(">")[0]
    assert str(msg["List-Unsubscribe"]) == (f"<https://in.example.com/v1/unsubscribe/{token}>, "
                                            f"<mailto:unsubscribe@mail.example.com?subject={token}>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link_in_body = f"https://in.example.com/v1/unsubscribe/{token}"
    assert text_of(msg) == f"Bye: {link_in_body} (end)"  # the header's very link
    assert f'href="{link_in_body}"' in str(msg.get_body(("html",)).get_content())
    link = Signer(SECRET).verify(PURPOSE, token, NOW)
    assert (link.subject, link.data) == ("c1", "ada@example.com\nnewsletter")


def test_without_a_group_the_token_covers_the_whole_channel() -> None:
    token = UnsubscribeLinks(signer, "https://in.example.com", "m.example.com", 60).token(action())
    assert signer.verify(PURPOSE, token, NOW).data == "ada@example.com\n"


@pytest.mark.parametrize("kind", ["transactional", "mandatory"])
def test_transactional_and_mandatory_email_carry_no_unsubscribe(kind: str, templates: Any) -> None:
    msg = channel(templates).render(action(kind))
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert text_of(msg) == "Bye: none (end)"


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
    settings = Settings.from_env({**LINKS, **env})
    with pytest.raises(SettingsError, match=message):
        EmailChannel(settings, library(settings))
