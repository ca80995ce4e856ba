"""Idempotency-Key (both engines): a retry replays the first answer and never records twice."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from consentry.core.runtime import Core

Client = httpx.AsyncClient
URL = "/v1/customers/c-1/consents"
GRANT = {"decisions": [{"purpose": "analytics", "decision": "granted"}]}


@pytest.fixture
async def customer(client: Client) -> str:
    r = await client.put("/v1/customers/c-1", json={"region": "EU"})
    assert r.status_code == 201, r.text
    return "c-1"


async def ledger_rows(core: Core) -> int:
    row = await core.db.fetchrow("SELECT COUNT(*) AS n FROM consent_records")
    assert row is not None
    return int(row["n"])


def key(value: str, **headers: str) -> dict[str, str]:
    return {"Idempotency-Key": value, **headers}


async def test_concurrent_retries_record_once(client: Client, customer: str, core: Core) -> None:
    """Ten concurrent sends with one key record one ledger row and get ten identical answers."""
    answers = await asyncio.gather(
        *(client.post(URL, json=GRANT, headers=key("k-1")) for _ in range(10))
    )
    assert await ledger_rows(core) == 1
    assert {r.status_code for r in answers} == {201}
    assert len({r.content for r in answers}) == 1
    replayed = [r for r in answers if r.headers.get("idempotent-replayed") == "true"]
    fresh = [r for r in answers if "idempotent-replayed" not in r.headers]
    assert len(replayed) == 9 and len(fresh) == 1
    assert all(r.headers["content-type"].startswith("application/json") for r in answers)

    # a later retry replays too
    again = await client.post(URL, json=GRANT, headers=key("k-1"))
    assert again.status_code == 201
    assert again.content == answers[0].content
    assert again.headers["idempotent-replayed"] == "true"
    assert await ledger_rows(core) == 1
    history = (await client.get(f"{URL}/history")).json()["items"]
    assert [h["id"] for h in history] == [answers[0].json()["records"][0]["id"]]


async def test_without_a_key_each_request_records(
    client: Client, customer: str, core: Core
) -> None:
    """Without Idempotency-Key two identical sends record two rows."""
    for _ in range(2):
        assert (await client.post(URL, json=GRANT)).status_code == 201
    assert await ledger_rows(core) == 2


async def test_same_key_different_body_is_422(client: Client, customer: str, core: Core) -> None:
    """Reusing a key with another body is a 422 on Idempotency-Key and records nothing more."""
    first = await client.post(URL, json=GRANT, headers=key("k-2"))
    assert first.status_code == 201
    other = {"decisions": [{"purpose": "analytics", "decision": "withdrawn"}]}
    r = await client.post(URL, json=other, headers=key("k-2"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "Idempotency-Key"
    assert await ledger_rows(core) == 1
    # same body on another path is another request too
    assert (await client.put("/v1/customers/c-2", json={})).status_code == 201
    r = await client.post("/v1/customers/c-2/consents", json=GRANT, headers=key("k-2"))
    assert r.status_code == 422
    assert await ledger_rows(core) == 1


async def test_keys_are_per_principal(client: Client, customer: str, core: Core) -> None:
    """The same key sent by two API keys is two independent requests."""
    r = await client.post("/v1/api-keys", json={"name": "second", "scopes": ["backend:write"]})
    other = r.json()["key"]
    a = await client.post(URL, json=GRANT, headers=key("shared"))
    b = await client.post(URL, json=GRANT, headers=key("shared", Authorization=f"Bearer {other}"))
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["records"][0]["id"] != b.json()["records"][0]["id"]
    assert await ledger_rows(core) == 2
    # each principal replays its own answer
    b2 = await client.post(URL, json=GRANT, headers=key("shared", Authorization=f"Bearer {other}"))
    assert b2.content == b.content and b2.headers["idempotent-replayed"] == "true"


async def test_failed_request_is_not_stored(client: Client, customer: str, core: Core) -> None:
    """A 422 is not remembered: the corrected retry with the same key records."""
    bad = {"decisions": [{"purpose": "no_such_purpose", "decision": "granted"}]}
    r = await client.post(URL, json=bad, headers=key("k-3"))
    assert r.status_code == 422
    r = await client.post(URL, json=GRANT, headers=key("k-3"))
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    assert await ledger_rows(core) == 1


async def test_not_found_is_not_stored(client: Client, core: Core) -> None:
    """A batch refused for an unknown customer can be retried with the same key once it exists."""
    batch = {"events": [{"external_id": "late", "name": "signed_up"}]}
    r = await client.post("/v1/events", json=batch, headers=key("k-4"))
    assert r.status_code == 404
    assert (await client.put("/v1/customers/late", json={})).status_code == 201
    r = await client.post("/v1/events", json=batch, headers=key("k-4"))
    assert r.status_code == 201, r.text
    r2 = await client.post("/v1/events", json=batch, headers=key("k-4"))
    assert r2.headers["idempotent-replayed"] == "true" and r2.content == r.content
    assert len((await client.get("/v1/customers/late/events")).json()["items"]) == 1


async def test_other_writes_replay(client: Client) -> None:
    """Customer upserts and preference changes replay too, with their first status."""
    body: dict[str, Any] = {"region": "EU", "attributes": {"plan": "pro"}}
    first = await client.put("/v1/customers/c-9", json=body, headers=key("u-1"))
    assert first.status_code == 201
    again = await client.put("/v1/customers/c-9", json=body, headers=key("u-1"))
    assert again.status_code == 201 and again.content == first.content
    assert again.json()["version"] == 1
    r = await client.get("/v1/customers/c-9")
    assert r.json()["version"] == 1

    patch = {"channels": {"sms": False}}
    p1 = await client.patch("/v1/customers/c-9/preferences", json=patch, headers=key("p-1"))
    p2 = await client.patch("/v1/customers/c-9/preferences", json=patch, headers=key("p-1"))
    assert p1.status_code == p2.status_code == 200
    assert p2.headers["idempotent-replayed"] == "true"


async def test_bad_key_is_422(client: Client, customer: str, core: Core) -> None:
    """An over-long Idempotency-Key is refused before anything is recorded."""
    r = await client.post(URL, json=GRANT, headers=key("x" * 201))
    assert r.status_code == 422
    assert r.json()["field"] == "Idempotency-Key"
    assert await ledger_rows(core) == 0
