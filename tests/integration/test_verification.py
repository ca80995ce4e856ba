"""A customer without a token proves who they are by email (a real SMTP server, aiosmtpd) and
files their own erasure request."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message

import httpx
import pytest
from aiosmtpd.controller import Controller


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"

    def code(self) -> str:
        body = self.messages[-1].get_payload(decode=True)
        assert isinstance(body, bytes)
        found = re.search(r"\b(\d{6})\b", body.decode())
        assert found, body
        return found.group(1)


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("CONSENTRY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CONSENTRY_SMTP_PORT", str(port))
    monkeypatch.setenv("CONSENTRY_SMTP_FROM", "privacy@shop.example")
    try:
        yield box
    finally:
        controller.stop()


async def test_email_code_then_own_erasure_request(client: httpx.AsyncClient, inbox: Inbox) -> None:
    r = await client.put("/v1/customers/v-1", json={"identities": {"email": "Vera@Example.com"}})
    assert r.status_code == 201
    public = {"Authorization": ""}
    r = await client.post("/v1/verifications", json={"email": "nobody@example.com"}, headers=public)
    assert r.status_code == 202 and inbox.messages == []  # same answer, nothing sent
    r = await client.post("/v1/verifications", json={"email": "vera@example.com"}, headers=public)
    assert r.status_code == 202, r.text
    [mail] = inbox.messages
    assert mail["To"] == "vera@example.com" and mail["From"] == "privacy@shop.example"
    code = inbox.code()

    wrong = "000000" if code != "000000" else "111111"
    r = await client.post(
        "/v1/verifications/confirm",
        json={"email": "vera@example.com", "code": wrong},
        headers=public,
    )
    assert r.status_code == 401 and "4 attempts left" in r.json()["detail"]
    r = await client.post(
        "/v1/verifications/confirm",
        json={"email": "vera@example.com", "code": code},
        headers=public,
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    r = await client.post(  # the code works once
        "/v1/verifications/confirm",
        json={"email": "vera@example.com", "code": code},
        headers=public,
    )
    assert r.status_code == 401

    me = {"Authorization": f"Bearer {token}"}
    r = await client.post("/v1/me/requests", json={"type": "erasure"}, headers=me)
    assert r.status_code == 201 and r.json()["state"] == "verified"
    r = await client.get(
        "/v1/audit/entries", params={"customer": "v-1", "action": "verification.*"}
    )
    actions = sorted(e["action"] for e in r.json()["items"])
    assert actions == ["verification.code_sent", "verification.confirmed", "verification.failed"]
    assert "vera" not in r.text.lower() and code not in r.text


async def test_five_wrong_codes_use_the_code_up(client: httpx.AsyncClient, inbox: Inbox) -> None:
    await client.put("/v1/customers/v-2", json={"identities": {"email": "v2@example.com"}})
    public = {"Authorization": ""}
    await client.post("/v1/verifications", json={"email": "v2@example.com"}, headers=public)
    code = inbox.code()
    wrong = "000000" if code != "000000" else "111111"
    details = []
    for _ in range(5):
        r = await client.post(
            "/v1/verifications/confirm", json={"email": "v2@example.com", "code": wrong},
            headers=public,
        )  # fmt: skip
        details.append(r.json()["detail"])
    assert "last attempt" in details[-1]
    r = await client.post(
        "/v1/verifications/confirm", json={"email": "v2@example.com", "code": code}, headers=public
    )
    assert r.status_code == 401  # burnt, even with the right code


async def test_no_smtp_server_is_a_clear_503(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONSENTRY_SMTP_HOST", raising=False)
    await client.put("/v1/customers/v-3", json={"identities": {"email": "v3@example.com"}})
    r = await client.post(
        "/v1/verifications", json={"email": "v3@example.com"}, headers={"Authorization": ""}
    )
    assert r.status_code == 503 and "try again" in r.json()["detail"]
