"""Sending one message over SMTP (the standard library's client, in a worker thread)."""

from __future__ import annotations

import asyncio
import os
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from consentry.plugins import Message


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


def configured() -> bool:
    """Whether an SMTP server is set (CONSENTRY_SMTP_HOST): without one, nothing can be sent."""
    return bool(os.environ.get("CONSENTRY_SMTP_HOST", "").strip())


def _deliver(mail: EmailMessage) -> str:
    host = os.environ.get("CONSENTRY_SMTP_HOST", "").strip()
    if not host:
        raise SmtpNotConfigured("no SMTP server: set CONSENTRY_SMTP_HOST (and _PORT, _FROM)")
    port = int(os.environ.get("CONSENTRY_SMTP_PORT", "25"))
    with smtplib.SMTP(host, port, timeout=10) as client:
        if os.environ.get("CONSENTRY_SMTP_STARTTLS") == "1":
            client.starttls()
        user = os.environ.get("CONSENTRY_SMTP_USER")
        if user:
            client.login(user, os.environ.get("CONSENTRY_SMTP_PASSWORD", ""))
        client.send_message(mail)
    return str(mail["Message-ID"])


async def send(message: Message) -> str:
    """Deliver one message; the delivery id is its Message-ID."""
    sender = os.environ.get("CONSENTRY_SMTP_FROM", "consentry@localhost")
    return await asyncio.to_thread(_deliver, _message(message, sender))
