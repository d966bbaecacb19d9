"""Email over SMTP (STARTTLS and auth optional), rendered from a template per action.

Templates are `<action>.txt` files in `KAIROS_EMAIL_TEMPLATES`: a first line `Subject: ...`, then
the body, with `$name` placeholders filled from the action's payload (and `$action`,
`$contact_id`, `$action_id`, and `$unsubscribe_url` for marketing email); without a template a
plain default is used. Marketing email carries RFC 8058's one-click unsubscribe headers and, in
its body, the same link (appended when the template does not place it); transactional and
mandatory email carries neither (connectors/unsubscribe.py). The action id goes in
the Message-ID and an `X-Kairos-Action-Id` header, so the provider's event webhook can credit
opens and clicks to the action (as the `kairos_action_id` custom argument).
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from string import Template

import aiosmtplib
import orjson

from connectors.delivery import Permanent, Transient
from connectors.unsubscribe import UnsubscribeLinks
from engine.config import Settings
from engine.model.actions import Action

# RFC 5322's hard line limit, so a long unsubscribe link is never folded into encoded words;
# messages are flattened with it here, since the SMTP client would refold them at 78.
WIRE = policy.SMTP.clone(max_line_length=998)
DEFAULT = "Subject: $action\n\nHello,\n\nWe thought you would like this: $action.\n"


class EmailChannel:
    name = "email"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.provider = f"smtp:{settings.smtp_host}:{settings.smtp_port}"
        self.resend_safe = False  # SMTP relays do not drop a repeated Message-ID
        self.templates = settings.email_templates
        self.links = UnsubscribeLinks.from_settings(settings)

    def render(self, action: Action) -> EmailMessage:
        if action.recipient is None:
            raise Permanent(f"contact {action.contact_id} has no email address")
        source = DEFAULT
        if self.templates is not None:
            path = Path(self.templates) / f"{action.action}.txt"
            if path.exists():
                source = path.read_text()
        marketing = action.action_class == "marketing"
        token = self.links.token(action) if marketing else ""
        unsubscribe = self.links.url(token) if marketing else ""
        fields = {k: str(v) for k, v in action.payload.items()}
        fields.update(action=action.action, contact_id=action.contact_id,
                      action_id=action.action_id, unsubscribe_url=unsubscribe)
        text = Template(source).safe_substitute(fields)
        if unsubscribe and unsubscribe not in text:
            text = f"{text.rstrip()}\n\nTo stop these emails: {unsubscribe}\n"
        head, _, body = text.partition("\n\n")
        subject = head.removeprefix("Subject:").strip() if head.startswith("Subject:") else ""
        msg = EmailMessage(policy=WIRE)
        if marketing:
            for name, value in self.links.headers(token).items():
                msg[name] = value
        msg["From"] = self.settings.smtp_from
        msg["To"] = action.recipient
        msg["Subject"] = subject or action.action
        msg["Message-ID"] = f"<{action.action_id}@kairos>"
        msg["X-Kairos-Action-Id"] = action.action_id
        # The provider's SMTP API: custom arguments it echoes in every webhook event.
        args = {"unique_args": {"kairos_action_id": action.action_id}}
        msg["X-SMTPAPI"] = orjson.dumps(args).decode()
        msg.set_content(body if subject else text)
        return msg

    async def send(self, action: Action) -> None:
        s = self.settings
        message = self.render(action)
        try:
            await aiosmtplib.send(
                message.as_bytes(), sender=parseaddr(s.smtp_from)[1],
                recipients=[str(message["To"])], hostname=s.smtp_host, port=s.smtp_port,
                start_tls=s.smtp_starttls,
                username=s.smtp_user or None, password=s.smtp_password or None, timeout=10,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            kind = Permanent if all(500 <= c < 600 for c in codes) else Transient
            raise kind(f"SMTP recipient refused: {exc.recipients[0].code} "
                       f"{exc.recipients[0].message}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            # SMTP: 4xx means try later, 5xx means this will never work.
            kind = Permanent if 500 <= exc.code < 600 else Transient
            raise kind(f"SMTP {exc.code}: {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise Transient(f"SMTP: {type(exc).__name__}: {exc}") from exc
