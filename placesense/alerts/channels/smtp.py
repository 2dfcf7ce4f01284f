"""Plain email through the council's own mail server as a channel (STARTTLS or implicit TLS by default); the
outbox ``message_id`` is the email's ``Message-ID``, the same on every resend.

This module must not read settings or the environment (the server and its password are passed in) or decide who
is told.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

from placesense.alerts.channels.base import DeliveryError, Sent
from placesense.alerts.outbox import Delivery


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    timeout_s: float = 20.0
    ca_file: str | None = None


class SmtpChannel:
    """Plain email through the council's own mail server (STARTTLS or implicit TLS by default)."""

    name = "email"
    label = "email (SMTP)"

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    def _connect(self) -> smtplib.SMTP:
        config = self._config
        context = ssl.create_default_context(cafile=config.ca_file)
        if config.security == "tls":
            return smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_s, context=context)
        server = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        if config.security == "starttls":
            server.starttls(context=context)
        return server

    def send(self, delivery: Delivery) -> Sent:
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = delivery.recipient
        message["Subject"] = str(delivery.payload.get("title", "placesense alert"))
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<{delivery.message_id}@placesense>"  # the same on every resend
        message.set_content(str(delivery.payload.get("text", "")))
        try:
            with self._connect() as server:
                if self._config.username:
                    server.login(self._config.username, self._config.password or "")
                server.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"the mail server refused {delivery.recipient}: {exc.recipients}", False) from exc
        except smtplib.SMTPResponseException as exc:
            reason = f"the mail server answered {exc.smtp_code}: {exc.smtp_error!r}"
            raise DeliveryError(reason, retryable=exc.smtp_code < 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"the mail server could not be reached: {exc}", retryable=True) from exc
        return Sent("sent", "smtp")
