"""consentry-email: the email channel, over SMTP. First-party, loaded like any plugin.

Configured from the environment (read at each send, so a change needs no restart):
CONSENTRY_SMTP_HOST (required to send), CONSENTRY_SMTP_PORT (default 25),
CONSENTRY_SMTP_FROM (default consentry@localhost), CONSENTRY_SMTP_STARTTLS (1 to upgrade),
CONSENTRY_SMTP_USER and CONSENTRY_SMTP_PASSWORD (optional login).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from consentry.plugins import Channel, PluginContext, hookimpl
from consentry_email.smtp import configured, send

__version__ = "0.1.0"


@hookimpl
def register_channels(register: Callable[[Channel], None]) -> None:
    register(Channel("email", send, "Email over SMTP (CONSENTRY_SMTP_*)", ready=configured))


@hookimpl
async def dsr_export(subject_id: UUID, context: PluginContext) -> dict[str, Any]:
    """Nothing is kept: messages are handed to the SMTP server and not stored here."""
    return {}


@hookimpl
async def dsr_erase(subject_id: UUID, context: PluginContext) -> int:
    """Nothing is kept per customer, so nothing to remove (idempotent: always 0)."""
    return 0
