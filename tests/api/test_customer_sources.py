"""A customer's own token records only what a customer can do themselves: a preference-center
change (the default) or an unsubscribe link, never an import or a backend's API call."""

from __future__ import annotations

import httpx
import pytest

WRITES = {
    "consents": (
        "POST",
        "/v1/me/consents",
        {"decisions": [{"purpose": "analytics", "decision": "granted"}]},
    ),
    "preferences": ("PATCH", "/v1/me/preferences", {"language": "en"}),
}


async def customer_headers(client: httpx.AsyncClient, external_id: str) -> dict[str, str]:
    """A customer (EU) and their own token, as request headers."""
    r = await client.put(f"/v1/customers/{external_id}", json={"region": "EU"})
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/customers/{external_id}/token", json={})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.mark.parametrize("source", ["import", "api"])
@pytest.mark.parametrize("write", list(WRITES))
async def test_a_customer_token_cannot_claim_a_backend_source(
    client: httpx.AsyncClient, write: str, source: str
) -> None:
    """An explicit import or api source with a customer token is 403 naming the allowed ones."""
    headers = await customer_headers(client, f"src-{write}-{source}")
    method, path, body = WRITES[write]
    r = await client.request(method, path, json={**body, "source": source}, headers=headers)
    assert r.status_code == 403, r.text
    assert "preference_center" in r.json()["detail"] and "unsubscribe_link" in r.json()["detail"]


@pytest.mark.parametrize("source", [None, "preference_center", "unsubscribe_link"])
async def test_a_customer_records_their_own_sources(
    client: httpx.AsyncClient, source: str | None
) -> None:
    """With a customer token, no source means preference_center; unsubscribe_link is kept."""
    headers = await customer_headers(client, f"src-ok-{source}")
    body = WRITES["consents"][2] | ({"source": source} if source else {})
    r = await client.post("/v1/me/consents", json=body, headers=headers)
    assert r.status_code == 201, r.text
    r = await client.get("/v1/me/consents/history", headers=headers)
    assert [x["source"] for x in r.json()["items"]] == [source or "preference_center"]


async def test_a_backend_key_may_still_record_an_import(client: httpx.AsyncClient) -> None:
    """The company's backend records imports as before."""
    await client.put("/v1/customers/src-import", json={"region": "EU"})
    body = WRITES["consents"][2] | {"source": "import"}
    r = await client.post("/v1/customers/src-import/consents", json=body)
    assert r.status_code == 201, r.text
