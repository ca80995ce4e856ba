"""A request's regulation is the customer's region's; another one (a later deadline, say) is a
compliance decision: only a compliance:write key may make it, and the audit entry records it."""

from __future__ import annotations

import httpx
import pytest

from consentry.core.runtime import Core


async def new_key(client: httpx.AsyncClient, scope: str) -> dict[str, str]:
    """A fresh API key with one scope, as request headers."""
    r = await client.post("/v1/api-keys", json={"name": scope, "scopes": [scope]})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


async def eu_customer(client: httpx.AsyncClient, external_id: str) -> None:
    r = await client.put(f"/v1/customers/{external_id}", json={"region": "EU"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("regulation", ["CCPA", "none"])
async def test_a_backend_key_cannot_choose_another_regulation(
    client: httpx.AsyncClient, regulation: str
) -> None:
    """A backend key filing an EU customer's request under another regulation gets 403 naming
    the region's regulation and the scope that may override it."""
    await eu_customer(client, "reg-1")
    headers = await new_key(client, "backend:write")
    body = {"external_id": "reg-1", "type": "access", "regulation": regulation}
    r = await client.post("/v1/requests", json=body, headers=headers)
    assert r.status_code == 403, r.text
    assert "GDPR" in r.json()["detail"] and "compliance:write" in r.json()["detail"]


@pytest.mark.parametrize("regulation", ["GDPR", None])
async def test_a_backend_key_files_under_the_regions_regulation(
    client: httpx.AsyncClient, regulation: str | None
) -> None:
    """Naming the region's own regulation, or none, files the request under it."""
    await eu_customer(client, "reg-2")
    headers = await new_key(client, "backend:write")
    body = {"external_id": "reg-2", "type": "access"} | (
        {"regulation": regulation} if regulation else {}
    )
    r = await client.post("/v1/requests", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["regulation"] == "GDPR"


async def test_a_compliance_override_is_filed_and_audited(
    client: httpx.AsyncClient, core: Core
) -> None:
    """A compliance:write key may file under another regulation; the audit entry says it
    overrode the region's."""
    await eu_customer(client, "reg-3")
    headers = await new_key(client, "compliance:write")
    body = {"external_id": "reg-3", "type": "access", "regulation": "CCPA"}
    r = await client.post("/v1/requests", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["regulation"] == "CCPA"
    row = await core.db.fetchrow(
        "SELECT details FROM audit_log WHERE action = 'dsr.received' ORDER BY seq DESC"
    )
    assert row is not None
    assert '"regulation_override":{"region_regulation":"GDPR"' in row["details"], row["details"]
