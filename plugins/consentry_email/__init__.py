"""consentry-email: the email channel, over SMTP. First-party, loaded like any plugin.

Its settings (`register_settings`, read by the host at start): CONSENTRY_SMTP_HOST (required
to send), CONSENTRY_SMTP_PORT (default 25), CONSENTRY_SMTP_FROM (default consentry@localhost),
CONSENTRY_SMTP_STARTTLS (true to upgrade), CONSENTRY_SMTP_USER and CONSENTRY_SMTP_PASSWORD
(optional login; the password also from CONSENTRY_SMTP_PASSWORD_FILE), or the settings file's
`[smtp]` table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from consentry.plugins import Channel, PluginContext, Setting, hookimpl
from consentry_email.smtp import SETTINGS, Smtp

__version__ = "0.1.0"


@hookimpl
def register_settings(register: Callable[[Setting], None]) -> None:
    for setting in SETTINGS:
        register(setting)


@hookimpl
def register_channels(register: Callable[[Channel], None], settings: Mapping[str, Any]) -> None:
    smtp = Smtp(settings)
    register(
        Channel("email", smtp.send, "Email over SMTP (CONSENTRY_SMTP_*)", ready=smtp.configured)
    )


@hookimpl
async def dsr_export(subject_id: UUID, context: PluginContext) -> dict[str, Any]:
    """Nothing is kept: messages are handed to the SMTP server and not stored here."""
    return {}


@hookimpl
async def dsr_erase(subject_id: UUID, context: PluginContext) -> int:
    """Nothing is kept per customer, so nothing to remove (idempotent: always 0)."""
    return 0
