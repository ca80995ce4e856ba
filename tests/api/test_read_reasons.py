"""A staff member's `?reason=` for reading a customer is free text: the immutable audit log keeps
it sealed with the customer's data key, compliance reads it opened while the customer lives, and
erasure leaves it unreadable."""

from __future__ import annotations

import httpx

from consentry.core.runtime import Core

REASON = "ticket 4711 from Ann Lee"


async def read_with_reason(client: httpx.AsyncClient, external_id: str) -> None:
    r = await client.put(f"/v1/customers/{external_id}", json={"region": "EU"})
    assert r.status_code == 201, r.text
    r = await client.get(f"/v1/customers/{external_id}", params={"reason": REASON})
    assert r.status_code == 200, r.text


async def read_entries(client: httpx.AsyncClient, external_id: str) -> list[dict[str, object]]:
    r = await client.get(
        "/v1/audit/entries", params={"customer": external_id, "action": "customer.read"}
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, object]] = r.json()["items"]
    return items


async def test_the_reason_is_not_stored_in_clear(client: httpx.AsyncClient, core: Core) -> None:
    """The stored audit entry holds the reason sealed, never its text."""
    await read_with_reason(client, "why-1")
    rows = await core.db.fetch("SELECT details FROM audit_log WHERE action = 'customer.read'")
    assert len(rows) == 1
    assert "4711" not in rows[0]["details"] and "reason_sealed" in rows[0]["details"]


async def test_compliance_sees_the_reason_of_a_live_customer(client: httpx.AsyncClient) -> None:
    """Browsing the audit log shows the reason opened, beside the sealed details."""
    await read_with_reason(client, "why-2")
    [entry] = await read_entries(client, "why-2")
    assert entry["reason"] == REASON


async def test_an_erased_customers_reason_is_unreadable(
    client: httpx.AsyncClient, core: Core
) -> None:
    """Once the customer is erased, the entry stays (the chain holds) but shows no reason."""
    await read_with_reason(client, "why-3")
    [before] = await read_entries(client, "why-3")
    r = await client.post("/v1/erasures", json={"external_ids": ["why-3"]})
    assert r.status_code == 200, r.text
    r = await client.get(f"/v1/audit/entries/{before['seq']}")
    assert r.status_code == 200, r.text
    assert r.json()["reason"] is None
    assert r.json()["details"]["reason_sealed"] == before["details"]["reason_sealed"]  # type: ignore[index]
