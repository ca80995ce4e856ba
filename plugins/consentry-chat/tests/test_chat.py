"""The chat plugin against a real running Consentry and a real local webhook."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from consentry.plugins import Message
from consentry.testing import Service, run_cli

from chat_server import SECRET, Webhook
from consentry_chat import webhook

EMAIL = {"email": "ada@example.com"}


def _dict_result(result: Any) -> str | None:
    return None if isinstance(result, dict) else f"returned {type(result).__name__}"


def _int_result(result: Any) -> str | None:
    return None if isinstance(result, int) else f"returned {type(result).__name__}"


async def _export(service: Service, subject_id: UUID) -> dict[str, Any]:
    results = await service.plugins.gather(
        "dsr_export", service.context, _dict_result, subject_id=subject_id
    )
    exported: dict[str, Any] = results["chat"]
    return exported


async def _erase(service: Service, subject_id: UUID) -> int:
    results = await service.plugins.gather(
        "dsr_erase", service.context, _int_result, subject_id=subject_id
    )
    erased: int = results["chat"]
    return erased


async def test_send_posts_a_signed_message_and_records_it(
    chat_webhook: Webhook, consentry_service: Service
) -> None:
    """An allowed send reaches the webhook, signed, and is recorded as delivered."""
    subject_id = await consentry_service.customer("c-1", identities=EMAIL)
    response = await consentry_service.client.post(
        "/v1/plugins/chat/send", json={"external_id": "c-1", "text": "Dark mode is here"}
    )
    assert response.status_code == 201, response.text
    delivery_id = response.json()["delivery_id"]
    [received] = chat_webhook.received
    assert received.json == {
        "delivery_id": delivery_id,
        "to": "ada@example.com",
        "text": "Dark mode is here",
    }
    signature = received.headers[webhook.SIGNATURE_HEADER]
    assert webhook.verify(SECRET, signature, received.body, now=time.time())
    exported = await _export(consentry_service, subject_id)
    assert [(d["id"], d["status"], d["text"]) for d in exported["deliveries"]] == [
        (delivery_id, "delivered", "Dark mode is here")
    ]
    json.dumps(exported)


async def test_a_refused_gate_is_a_403_problem_and_nothing_is_sent(
    chat_webhook: Webhook, consentry_service: Service
) -> None:
    """After the customer objects to product updates, the gate refuses and nothing goes out."""
    subject_id = await consentry_service.customer(
        "c-2", identities=EMAIL, consents={"product_updates": "withdrawn"}
    )
    response = await consentry_service.client.post(
        "/v1/plugins/chat/send", json={"external_id": "c-2", "text": "hello"}
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "chat is not allowed for this customer now" in response.json()["detail"]
    assert chat_webhook.received == []
    assert (await _export(consentry_service, subject_id)) == {"deliveries": []}


async def test_the_view_and_the_refusal_are_audited(
    chat_webhook: Webhook, consentry_service: Service
) -> None:
    """The gate audits each view it builds for the plugin, and each refusal; the plugin's
    own write (the delivery it records) is audited too."""
    await consentry_service.customer("c-3", identities=EMAIL)
    await consentry_service.client.post(
        "/v1/plugins/chat/send", json={"external_id": "c-3", "text": "hi"}
    )
    rows = await consentry_service.core.db.fetch(
        "SELECT action FROM audit_log WHERE actor = 'plugin:chat' ORDER BY seq"
    )
    assert [r["action"] for r in rows] == ["plugin.view", "plugin.write"]


async def test_a_customer_without_email_is_a_422(
    chat_webhook: Webhook, consentry_service: Service
) -> None:
    await consentry_service.customer("c-4")
    response = await consentry_service.client.post(
        "/v1/plugins/chat/send", json={"external_id": "c-4", "text": "hi"}
    )
    assert response.status_code == 422
    assert "no email identity" in response.json()["detail"]


async def test_an_unknown_customer_is_a_404(
    chat_webhook: Webhook, consentry_service: Service
) -> None:
    response = await consentry_service.client.post(
        "/v1/plugins/chat/send", json={"external_id": "nobody", "text": "hi"}
    )
    assert response.status_code == 404


async def test_a_failing_webhook_is_a_502_and_recorded_as_failed(
    chat_webhook: Webhook, consentry_service: Service
) -> None:
    """A webhook that answers 500 fails the send; the attempt is kept, marked failed."""
    chat_webhook.status = 500
    subject_id = await consentry_service.customer("c-5", identities=EMAIL)
    response = await consentry_service.client.post(
        "/v1/plugins/chat/send", json={"external_id": "c-5", "text": "hi"}
    )
    assert response.status_code == 502
    assert "answered 500" in response.json()["detail"]
    [delivery] = (await _export(consentry_service, subject_id))["deliveries"]
    assert (delivery["status"], delivery["error"]) == ("failed", "chat webhook answered 500")


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    """No webhook URL when the service starts (the host reads plugin settings at start)."""
    monkeypatch.delenv("CONSENTRY_CHAT_WEBHOOK_URL", raising=False)


async def test_an_unconfigured_webhook_is_a_503(
    unconfigured: None, consentry_service: Service
) -> None:
    await consentry_service.customer("c-6", identities=EMAIL)
    response = await consentry_service.client.post(
        "/v1/plugins/chat/send", json={"external_id": "c-6", "text": "hi"}
    )
    assert response.status_code == 503
    assert "CONSENTRY_CHAT_WEBHOOK_URL" in response.json()["detail"]


async def test_dsr_erase_removes_the_customers_deliveries_once(
    chat_webhook: Webhook, consentry_service: Service
) -> None:
    """Erasure removes this customer's deliveries, leaves others', and is idempotent."""
    ada = await consentry_service.customer("c-7", identities=EMAIL)
    bob = await consentry_service.customer("c-8", identities={"email": "bob@example.com"})
    for external_id in ("c-7", "c-7", "c-8"):
        response = await consentry_service.client.post(
            "/v1/plugins/chat/send", json={"external_id": external_id, "text": "hi"}
        )
        assert response.status_code == 201
    assert await _erase(consentry_service, ada) == 2
    assert await _erase(consentry_service, ada) == 0
    assert (await _export(consentry_service, ada)) == {"deliveries": []}
    assert len((await _export(consentry_service, bob))["deliveries"]) == 1


async def test_the_registered_channel_sends_a_signed_message(
    chat_webhook: Webhook, consentry_service: Service
) -> None:
    """The core (or another plugin) can send through the `chat` channel it registered."""
    owner, channel = consentry_service.plugins.registry.channels["chat"]
    assert owner == "chat"
    message = Message(UUID(int=1), "product_updates", "", "hello", "ada@example.com")
    delivery_id = await channel.send(message)
    [received] = chat_webhook.received
    assert received.headers[webhook.DELIVERY_HEADER] == delivery_id
    assert webhook.verify(
        SECRET, received.headers[webhook.SIGNATURE_HEADER], received.body, now=time.time()
    )


async def test_the_plugin_is_listed_with_its_hooks_and_capability(
    consentry_service: Service,
) -> None:
    response = await consentry_service.client.get("/v1/plugins")
    [chat] = response.json()["items"]
    assert chat["name"] == "chat"
    assert chat["capabilities"] == ["channel.chat.product"]
    assert {"dsr_erase", "dsr_export", "register_channels", "register_routes"} <= set(chat["hooks"])


@pytest.mark.parametrize(
    ("tamper", "age"),
    [("body", 0), ("secret", 0), ("none", 301)],
)
def test_a_receiver_rejects_tampered_or_stale_signatures(tamper: str, age: int) -> None:
    """`verify` fails for another body, another secret, or a signature over 5 minutes old."""
    now = int(time.time())
    body = b'{"text":"hi"}'
    header = webhook.sign(SECRET, now - age, body)
    assert webhook.verify(SECRET, header, body, now=now - age)
    other_body = b'{"text":"hi!"}' if tamper == "body" else body
    secret = "other" if tamper == "secret" else SECRET
    assert not webhook.verify(secret, header, other_body, now=now)


async def test_the_chat_deliveries_command_counts_by_status(
    chat_webhook: Webhook,  # before the service: the host reads plugin settings at start
    consentry_service: Service,
    consentry_policy_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`consentry chat-deliveries`, listed in `consentry --help`, counts the deliveries by
    status with the plugin's context, in a real process on the service's data."""
    await consentry_service.customer("c-9", identities=EMAIL)
    response = await consentry_service.client.post(
        "/v1/plugins/chat/send", json={"external_id": "c-9", "text": "hi"}
    )
    assert response.status_code == 201, response.text
    monkeypatch.setenv("CONSENTRY_PLUGINS", "chat")
    monkeypatch.setenv("CONSENTRY_POLICY_PATH", str(consentry_policy_path))
    settings = consentry_service.core.settings
    code, out, err = await run_cli(settings, "chat-deliveries")
    assert code == 0, err
    assert out == "1 deliveries\n  delivered: 1\n"
    code, out, err = await run_cli(settings, "--help")
    assert code == 0, err
    assert "chat-deliveries  count the chat messages sent, by status (plugin chat)" in out
