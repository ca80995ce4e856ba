"""Sending one message over SMTP (the standard library's client, in a worker thread)."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from consentry.plugins import Message, Setting

# Read by the host at start: CONSENTRY_SMTP_<NAME> (the names this plugin has always used).
SETTINGS = tuple(
    Setting(name, kind, default, help, secret=secret, prefix="smtp")
    for name, kind, default, help, secret in (
        ("host", str, "", "the SMTP server (required to send email)", False),
        ("port", int, 25, "its port", False),
        ("from", str, "consentry@localhost", "the sender address", False),
        ("starttls", bool, False, "upgrade the connection with STARTTLS", False),
        ("user", str, "", "login name (none: no login)", False),
        ("password", str, "", "login password", True),
    )
)


class SmtpNotConfigured(RuntimeError):
    pass


def _message(message: Message, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    for name, value in message.headers.items():
        mail[name] = value
    mail.set_content(message.body)
    return mail


@dataclass(frozen=True, slots=True)
class Smtp:
    """The email channel with its settings (`context.settings` of the plugin)."""

    settings: Mapping[str, Any]

    @property
    def host(self) -> str:
        return str(self.settings["host"]).strip()

    def configured(self) -> bool:
        """Whether an SMTP server is set (CONSENTRY_SMTP_HOST): without one, nothing is sent."""
        return bool(self.host)

    def _deliver(self, mail: EmailMessage) -> str:
        if not self.host:
            raise SmtpNotConfigured("no SMTP server: set CONSENTRY_SMTP_HOST (and _PORT, _FROM)")
        with smtplib.SMTP(self.host, self.settings["port"], timeout=10) as client:
            if self.settings["starttls"]:
                client.starttls()
            if self.settings["user"]:
                client.login(self.settings["user"], self.settings["password"])
            client.send_message(mail)
        return str(mail["Message-ID"])

    async def send(self, message: Message) -> str:
        """Deliver one message; the delivery id is its Message-ID."""
        mail = _message(message, self.settings["from"])
        return await asyncio.to_thread(self._deliver, mail)
