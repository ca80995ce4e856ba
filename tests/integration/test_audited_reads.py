"""Reads of a customer's consents and preferences by staff leave an audit entry; the customer's
own reads through /v1/me do not."""

from __future__ import annotations

import httpx

from consentry.core.runtime import Core


async def _actions(core: Core) -> list[str]:
    rows = await core.db.fetch("SELECT action FROM audit_log ORDER BY seq")
    return [r["action"] for r in rows]


async def test_staff_reads_of_consents_and_preferences_are_audited(
    client: httpx.AsyncClient, core: Core
) -> None:
    """GET consents, history and preferences with an API key each append one read entry."""
    r = await client.put("/v1/customers/r-1", json={"region": "EU"})
    assert r.status_code == 201
    before = len(await _actions(core))
    for path in ("consents", "consents/history", "preferences"):
        r = await client.get(f"/v1/customers/r-1/{path}")
        assert r.status_code == 200, r.text
    added = (await _actions(core))[before:]
    assert added == ["consents.read", "consents.history.read", "preferences.read"]


async def test_customer_own_reads_are_not_audited(client: httpx.AsyncClient, core: Core) -> None:
    """A customer reading their own consents and preferences adds no audit entry."""
    await client.put("/v1/customers/r-2", json={"region": "EU"})
    token = (await client.post("/v1/customers/r-2/token", json={})).json()["token"]
    before = len(await _actions(core))
    me = {"Authorization": f"Bearer {token}"}
    for path in ("consents", "consents/history", "preferences"):
        r = await client.get(f"/v1/me/{path}", headers=me)
        assert r.status_code == 200, r.text
    assert len(await _actions(core)) == before
