"""The API end to end on both engines: the happy path a company backend takes."""

from __future__ import annotations

import httpx

Client = httpx.AsyncClient


async def test_upsert_record_and_check(client: Client) -> None:
    """A customer created, a grant recorded, and the check allows with the reason."""
    r = await client.put(
        "/v1/customers/c-1",
        json={
            "region": "EU",
            "identities": {"email": "ann@example.com"},
            "attributes": {"plan": "pro"},
        },
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/customers/c-1/consents",
        json={"decisions": [{"purpose": "analytics", "decision": "granted"}]},
    )
    assert r.status_code == 201, r.text
    r = await client.get("/v1/customers/c-1/check", params={"purpose": "analytics"})
    assert r.json()["decision"] == "allow"
    assert r.json()["reasons"][0]["code"] == "granted"
