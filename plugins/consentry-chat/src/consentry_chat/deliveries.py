"""Sending a chat message to one customer, and what the plugin keeps about it (DSR)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from consentry.plugins import GateRefused, Message, PluginContext

from consentry_chat import webhook

CAPABILITY = "channel.chat.product"
PURPOSES = ("product_updates",)


class Refused(Exception):
    """The gate said no: the reasons say why, for the caller."""


class NoAddress(Exception):
    """The customer has no identity the chat service can address."""


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    status: str
    error: str = ""


async def deliver(context: PluginContext, subject_id: UUID, text: str) -> Delivery:
    """Ask the gate, post to the webhook, record the attempt (delivered or failed)."""
    try:
        view = await context.gate.view(CAPABILITY, subject_id)
    except GateRefused as exc:
        raise Refused("; ".join(exc.reasons)) from exc
    to = view.identities.get("email")
    if not to:
        raise NoAddress("the customer has no email identity to address in chat")
    message = Message(subject_id, view.purposes[0], "", text, to)
    delivery = Delivery(str(uuid.uuid4()), "delivered")
    try:
        await webhook.post(message, delivery.id, webhook.ChatSettings.of(context.settings))
    except webhook.DeliveryFailed as exc:
        delivery = Delivery(delivery.id, "failed", str(exc))
    await context.execute(
        "INSERT INTO chat_deliveries (id, subject_id, purpose, text, status, error, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        UUID(delivery.id),
        subject_id,
        message.purpose,
        text,
        delivery.status,
        delivery.error,
        context.now(),
    )
    return delivery


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


async def export(context: PluginContext, subject_id: UUID) -> dict[str, Any]:
    rows = await context.fetch(
        "SELECT id, purpose, text, status, error, created_at FROM chat_deliveries"
        " WHERE subject_id = ? ORDER BY created_at, id",
        subject_id,
    )
    return {
        "deliveries": [
            {
                "id": str(r["id"]),
                "purpose": r["purpose"],
                "text": r["text"],
                "status": r["status"],
                "error": r["error"],
                "created_at": _iso(r["created_at"]),
            }
            for r in rows
        ]
    }


async def erase(context: PluginContext, subject_id: UUID) -> int:
    rows = await context.fetch(
        "SELECT COUNT(*) AS n FROM chat_deliveries WHERE subject_id = ?", subject_id
    )
    await context.execute("DELETE FROM chat_deliveries WHERE subject_id = ?", subject_id)
    return int(rows[0]["n"])
