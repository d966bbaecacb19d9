"""Email over SMTP (STARTTLS and auth optional), rendered from the action's templates.

The subject, HTML and text parts come from `<action>/email.subject|html|txt`
(connectors/templates/), sent as multipart/alternative; a template that is missing or fails
to render is a permanent failure naming the template and the variable. Marketing email carries
RFC 8058's one-click unsubscribe headers and, as `links.unsubscribe` in its templates, the same
link; transactional and mandatory email carries neither (connectors/unsubscribe.py). The
action id goes in the Message-ID and an `X-Kairos-Action-Id` header, so the provider's event
webhook can credit opens and clicks to the action (as the `kairos_action_id` custom argument).
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.utils import parseaddr

import aiosmtplib
import orjson

from connectors.delivery import Permanent, Transient
from connectors.templates import Library
from connectors.unsubscribe import UnsubscribeLinks
from engine.config import Settings
from engine.model.actions import Action

# RFC 5322's hard line limit, so a long unsubscribe link is never folded into encoded words;
# messages are flattened with it here, since the SMTP client would refold them at 78.
WIRE = policy.SMTP.clone(max_line_length=998)


class EmailChannel:
    name = "email"

    def __init__(self, settings: Settings, templates: Library) -> None:
        self.settings = settings
        self.provider = f"smtp:{settings.smtp_host}:{settings.smtp_port}"
        self.resend_safe = False  # SMTP relays do not drop a repeated Message-ID
        self.templates = templates
        self.links = UnsubscribeLinks.from_settings(settings)

    def render(self, action: Action) -> EmailMessage:
        if action.recipient is None:
            raise Permanent(f"contact {action.contact_id} has no email address")
        parts = self.templates.content(action)
        msg = EmailMessage(policy=WIRE)
        if action.action_class == "marketing":
            for name, value in self.links.headers(self.links.token(action)).items():
                msg[name] = value
        msg["From"] = self.settings.smtp_from
        msg["To"] = action.recipient
        msg["Subject"] = parts["subject"]
        msg["Message-ID"] = f"<{action.action_id}@kairos>"
        msg["X-Kairos-Action-Id"] = action.action_id
        # The provider's SMTP API: custom arguments it echoes in every webhook event.
        args = {"unique_args": {"kairos_action_id": action.action_id}}
        msg["X-SMTPAPI"] = orjson.dumps(args).decode()
        msg.set_content(parts["text"])
        msg.add_alternative(parts["html"], subtype="html")
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
