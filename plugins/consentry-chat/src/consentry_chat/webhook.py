"""The chat channel: one signed JSON POST per message to the configured webhook.

The receiver checks `X-Consentry-Signature: t=<unix seconds>,v1=<hex>`, where `v1` is
HMAC-SHA256, keyed with the shared secret, of `<t>.<raw body>` (see `verify`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from consentry.plugins import Message, Setting

SIGNATURE_HEADER = "X-Consentry-Signature"
DELIVERY_HEADER = "X-Consentry-Delivery"


# What the host reads at start: CONSENTRY_CHAT_WEBHOOK_URL, _SECRET (or _SECRET_FILE), _TIMEOUT.
SETTINGS = (
    Setting("webhook_url", str, "", "where chat messages are posted (http or https)"),
    Setting("webhook_secret", str, "", "the HMAC-SHA256 key that signs them", secret=True),
    Setting("webhook_timeout", float, 3.0, "seconds to wait for the webhook"),
)


class NotConfigured(RuntimeError):
    """The webhook URL or secret is not set."""


class DeliveryFailed(RuntimeError):
    """The webhook did not accept the message."""


@dataclass(frozen=True, slots=True)
class ChatSettings:
    url: str
    secret: str
    timeout: float = 3.0

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> ChatSettings:
        """From the plugin's settings (`context.settings`); `NotConfigured` without a URL or
        a secret."""
        url, secret = settings["webhook_url"], settings["webhook_secret"]
        if not url.startswith(("https://", "http://")) or not secret:
            raise NotConfigured(
                "the chat channel needs CONSENTRY_CHAT_WEBHOOK_URL (http or https) and"
                " CONSENTRY_CHAT_WEBHOOK_SECRET"
            )
        return cls(url, secret, settings["webhook_timeout"])


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance: int = 300) -> bool:
    """What a receiver does: the signature matches and is at most `tolerance` seconds old."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    fresh = abs(now - timestamp) <= tolerance
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), header)


async def post(message: Message, delivery_id: str, settings: ChatSettings) -> None:
    """Deliver `message`; raises `DeliveryFailed` unless the webhook answers 2xx."""
    body = json.dumps(
        {"delivery_id": delivery_id, "to": message.to, "text": message.body},
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(settings.secret, int(time.time()), body),
        DELIVERY_HEADER: delivery_id,
    }
    try:
        async with httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False) as http:
            response = await http.post(settings.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"chat webhook unreachable: {type(exc).__name__}") from exc
    if not response.is_success:
        raise DeliveryFailed(f"chat webhook answered {response.status_code}")


def sender(settings: Mapping[str, Any]) -> Callable[[Message], Awaitable[str]]:
    """The `Channel.send` of the chat channel: post the message, return its delivery id."""

    async def send(message: Message) -> str:
        delivery_id = str(uuid.uuid4())
        await post(message, delivery_id, ChatSettings.of(settings))
        return delivery_id

    return send
