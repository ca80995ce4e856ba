"""Fixtures for the API contract tests: the OpenAPI document, seeded data, and a live server.

The live server is uvicorn serving the app in the test's own event loop (the writer task lives
there); blocking clients such as schemathesis must run in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from consentry.app import create_app
from consentry.cli import openapi_document
from consentry.core.runtime import Core
from consentry.customers import records as customers
from consentry.dsr import verification
from consentry.settings import Settings
from consentry.storage.writer import WriteTx

SEED_CUSTOMER = "c-1"


@pytest.fixture(scope="session")
def openapi_spec() -> dict[str, Any]:
    """The OpenAPI document the app generates (no database needed)."""
    spec: dict[str, Any] = json.loads(openapi_document())
    return spec


@dataclass(frozen=True)
class Seed:
    """What `seeded` put in the database, for requests that must hit existing data."""

    external_id: str
    customer_token: str
    confirmation_token: str
    spare_key_id: str
    admin_key: str
    checkpoint_size: int
    record_id: str
    segment_id: str
    spare_segment_id: str
    template_id: str
    spare_template_id: str
    requests: dict[str, str]  # what a seeded data-subject request is for -> its id
    export_token: str
    verification_code: str


@pytest.fixture
async def seeded(client: httpx.AsyncClient, admin_key: str, core: Core) -> Seed:
    """Customer c-1 with consents, a pending double opt-in, preferences and events; a customer
    token for c-1; a spare API key that may be revoked; an emailed verification code (as if
    sent: VERIFICATION_CODE) for c-1; data-subject requests in every state."""
    r = await client.put(
        f"/v1/customers/{SEED_CUSTOMER}",
        json={
            "region": "EU",
            "identities": {"email": "c1@example.com"},
            "attributes": {"plan": "pro"},
        },
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/customers/{SEED_CUSTOMER}/consents",
        json={
            "decisions": [
                {"purpose": "analytics", "decision": "granted"},
                {"purpose": "marketing_email", "decision": "granted", "channel": "email"},
                {"purpose": "personalization", "decision": "granted"},
            ]
        },
    )
    assert r.status_code == 201, r.text
    record_id = r.json()["records"][0]["id"]
    confirmations = r.json()["confirmations"]
    assert confirmations, r.text
    r = await client.patch(
        f"/v1/customers/{SEED_CUSTOMER}/preferences",
        json={
            "channels": {"sms": False},
            "topics": {"newsletter": True},
            "language": "en",
        },
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/v1/customers/{SEED_CUSTOMER}/events",
        json={"name": "signed_up", "properties": {"plan": "pro"}},
    )
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/customers/{SEED_CUSTOMER}/token", json={"ttl_seconds": 3600})
    assert r.status_code == 201, r.text
    customer_token = r.json()["token"]
    r = await client.post("/v1/api-keys", json={"name": "spare", "scopes": ["backend:read"]})
    assert r.status_code == 201, r.text
    spare_key_id = r.json()["api_key"]["id"]
    plugin_ids = {}
    for kind, body in [
        (
            "segments",
            {
                "name": "pro",
                "purpose": "marketing_email",
                "filter": {"attr": "plan", "op": "=", "value": "pro"},
            },
        ),
        (
            "templates",
            {
                "name": "welcome",
                "body": "Hi {{ customer.first_name | default: 'there' }}",
                "subject": "Welcome",
            },
        ),
    ]:
        for copy in ("main", "spare"):
            r = await client.post(
                f"/v1/plugins/{kind}", json={**body, "name": f"{body['name']}-{copy}"}
            )
            assert r.status_code == 201, r.text
            plugin_ids[(kind, copy)] = r.json()["id"]
    requests, export_token = await seed_requests(client, customer_token)
    await seed_verification_code(core)
    r = await client.post("/v1/audit/checkpoints")
    assert r.status_code == 201, r.text
    return Seed(
        external_id=SEED_CUSTOMER,
        customer_token=customer_token,
        confirmation_token=confirmations[0]["token"],
        spare_key_id=spare_key_id,
        admin_key=admin_key,
        checkpoint_size=r.json()["tree_size"],
        record_id=record_id,
        segment_id=plugin_ids[("segments", "main")],
        spare_segment_id=plugin_ids[("segments", "spare")],
        template_id=plugin_ids[("templates", "main")],
        spare_template_id=plugin_ids[("templates", "spare")],
        requests=requests,
        export_token=export_token,
        verification_code=VERIFICATION_CODE,
    )


VERIFICATION_CODE = "1234567890"


async def seed_verification_code(core: Core) -> None:
    """A code for c-1 as if the email had gone out (this fixture has no SMTP server)."""
    subject_id, _ = await customers.resolve(core, SEED_CUSTOMER)
    address = verification.address_index(core, "c1@example.com")

    async def job(tx: WriteTx) -> None:
        await tx.execute(
            "INSERT INTO verification_codes (id, address_index, subject_id, code_hash,"
            " created_at, expires_at, attempts) VALUES (?, ?, ?, ?, ?, ?, 0)",
            uuid.uuid4(),
            address,
            subject_id,
            verification.code_hash(core, address, VERIFICATION_CODE),
            tx.now,
            tx.now + timedelta(minutes=15),
        )

    await core.writer.submit(job)


async def seed_requests(
    client: httpx.AsyncClient, customer_token: str
) -> tuple[dict[str, str], str]:
    """Data-subject requests in each state a step needs: c-1's own fulfilled access request
    (with an export and a download link), an erased customer's request (with a certificate),
    and open ones to verify, acknowledge, extend, reject and fulfil."""
    ids: dict[str, str] = {}

    async def file(purpose: str, ext: str, kind: str, **extra: Any) -> str:
        r = await client.post("/v1/requests", json={"external_id": ext, "type": kind, **extra})
        assert r.status_code == 201, r.text
        ids[purpose] = r.json()["id"]
        return ids[purpose]

    r = await client.post(
        "/v1/me/requests",
        json={"type": "access"},
        headers={"Authorization": f"Bearer {customer_token}"},
    )
    assert r.status_code == 201, r.text
    ids["access"] = r.json()["id"]
    r = await client.post(f"/v1/requests/{ids['access']}/fulfil")
    assert r.status_code == 200, r.text
    r = await client.post(f"/v1/requests/{ids['access']}/download-link")
    assert r.status_code == 201, r.text
    token = r.json()["url"].rsplit("/", 1)[1]
    r = await client.put("/v1/customers/c-erased", json={"identities": {"email": "e@example.com"}})
    assert r.status_code == 201, r.text
    erasure = await file("erasure", "c-erased", "erasure", verified_by="login")
    r = await client.post(f"/v1/requests/{erasure}/fulfil")
    assert r.status_code == 200, r.text
    await file("verify", SEED_CUSTOMER, "rectification")
    await file("acknowledge", SEED_CUSTOMER, "restrict")
    await file("extend", SEED_CUSTOMER, "portability")
    await file("reject", SEED_CUSTOMER, "restrict")
    await file("fulfil", SEED_CUSTOMER, "rectification", verified_by="login")
    for step in ("verify", "acknowledge", "extend", "reject"):  # one for the fuzzer, each
        await file(f"fuzz-{step}", SEED_CUSTOMER, "restrict")
    await file("fuzz-fulfil", SEED_CUSTOMER, "rectification", verified_by="login")
    r = await client.put("/v1/customers/c-bulk", json={})
    assert r.status_code == 201, r.text
    return ids, token


class _Server(uvicorn.Server):
    """uvicorn inside a test: leave pytest's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@pytest.fixture
def smtp_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The email channel configured, with an SMTP port nothing listens on (set before the core
    starts: the host reads plugin settings then)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("CONSENTRY_SMTP_PORT", str(probe.getsockname()[1]))
    monkeypatch.setenv("CONSENTRY_SMTP_HOST", "127.0.0.1")


@pytest.fixture
async def live_server(smtp_nowhere: None, core: Core, settings: Settings) -> AsyncIterator[str]:
    """The app served over real HTTP on a free 127.0.0.1 port, in this event loop; yields the
    base URL. Its email channel is configured, with an SMTP port nothing listens on: codes are
    asked for and answered as in production, and their emails fail in the background."""
    app = create_app(settings, core=core)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it, a small body written after the headers
    # waits on the client's delayed ACK (~40 ms a response).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=5
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout=10)
        if not task.done():
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sock.close()
