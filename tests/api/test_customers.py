"""Customers over the API on both engines: upsert, merge, validation, search, listing, at rest."""

from __future__ import annotations

import json
from typing import Any

import httpx

from consentry.core.runtime import Core

Client = httpx.AsyncClient


async def put(client: Client, external_id: str, **body: Any) -> httpx.Response:
    return await client.put(f"/v1/customers/{external_id}", json=body)


async def test_create_then_update_merges(client: Client) -> None:
    """A first PUT creates (201, version 1); a second merges into it (200), null removing a key."""
    r = await put(
        client,
        "c-1",
        region="EU",
        identities={"email": "ann@example.com", "phone": "+33 6 12 34 56 78"},
        attributes={"plan": "pro", "company": "Acme", "first_name": "Ann"},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["version"] == 1
    assert created["region"] == "EU"
    assert created["identities"] == {"email": "ann@example.com", "phone": "+33612345678"}

    r = await put(
        client,
        "c-1",
        identities={"phone": None},
        attributes={"company": None, "plan": "team", "country": "FR"},
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["id"] == created["id"]
    assert updated["version"] == 2
    assert updated["region"] == "EU"  # not sent: kept
    assert updated["identities"] == {"email": "ann@example.com"}
    assert updated["attributes"] == {"plan": "team", "first_name": "Ann", "country": "FR"}
    assert updated["created_at"] == created["created_at"]

    r = await client.get("/v1/customers/c-1")
    assert r.status_code == 200
    assert r.json()["attributes"] == updated["attributes"]
    assert r.json()["identities"] == updated["identities"]


async def test_unknown_region_is_rejected_naming_known_regions(client: Client) -> None:
    """An unknown region is a 422 on field `region` whose detail lists the policy's regions."""
    r = await put(client, "c-1", region="MARS")
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["field"] == "region"
    assert "MARS" in problem["detail"]
    for known in ("EU", "US-CA", "JP", "OTHER"):
        assert known in problem["detail"]
    assert (await client.get("/v1/customers/c-1")).status_code == 404


async def test_default_region_when_none_given(client: Client) -> None:
    """A customer created without a region gets the policy's default region."""
    r = await put(client, "c-1")
    assert r.status_code == 201, r.text
    assert r.json()["region"] == "OTHER"


async def test_email_is_normalized(client: Client) -> None:
    """Email is stored trimmed and lower-cased."""
    r = await put(client, "c-1", identities={"email": "  Ann.Lee@Example.COM "})
    assert r.status_code == 201, r.text
    assert r.json()["identities"]["email"] == "ann.lee@example.com"


async def test_invalid_phone_names_the_identity(client: Client) -> None:
    """A phone with too few digits is a 422 on `identities.phone`."""
    r = await put(client, "c-1", identities={"phone": "12"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "identities.phone"


async def test_search_by_email_case_insensitive_and_by_phone(client: Client) -> None:
    """Search finds a customer by email in any case, and by phone in any punctuation."""
    await put(client, "c-1", identities={"email": "ann@example.com", "phone": "+1 415 555 0100"})
    await put(client, "c-2", identities={"email": "bob@example.com"})

    r = await client.post("/v1/customers/search", json={"email": "ANN@Example.com"})
    assert r.status_code == 200, r.text
    assert r.json()["external_id"] == "c-1"

    r = await client.post("/v1/customers/search", json={"phone": "+1 (415) 555-0100"})
    assert r.status_code == 200, r.text
    assert r.json()["external_id"] == "c-1"

    r = await client.post("/v1/customers/search", json={"email": "nobody@example.com"})
    assert r.status_code == 404

    r = await client.post("/v1/customers/search", json={})
    assert r.status_code == 422
    r = await client.post(
        "/v1/customers/search", json={"email": "ann@example.com", "phone": "+14155550100"}
    )
    assert r.status_code == 422


async def test_unknown_customer_is_404(client: Client) -> None:
    """Reading an unknown customer, or its consents, is a 404 naming the external id."""
    r = await client.get("/v1/customers/nobody")
    assert r.status_code == 404
    assert "nobody" in r.json()["detail"]
    r = await client.get("/v1/customers/nobody/consents")
    assert r.status_code == 404


async def test_second_customer_with_same_email_conflicts(client: Client) -> None:
    """A second customer taking an email already used is a 409 and is not created."""
    assert (await put(client, "c-1", identities={"email": "ann@example.com"})).status_code == 201
    r = await put(client, "c-2", identities={"email": "Ann@Example.com"})
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "identities.email"
    assert (await client.get("/v1/customers/c-2")).status_code == 404
    # the owner itself may send its email again
    assert (await put(client, "c-1", identities={"email": "ann@example.com"})).status_code == 200
    # an existing customer moving to the taken address conflicts too
    assert (await put(client, "c-3", identities={"email": "carl@example.com"})).status_code == 201
    r = await put(client, "c-3", identities={"email": "ann@example.com"})
    assert r.status_code == 409
    r = await client.get("/v1/customers/c-3")
    assert r.json()["identities"]["email"] == "carl@example.com"


async def test_list_pages_with_cursor(client: Client) -> None:
    """Seven customers page as 3 + 3 + 1 with limit=3, no repeats, next_cursor null at the end."""
    for i in range(7):
        r = await put(client, f"cust-{i}", region="EU", identities={"email": f"u{i}@example.com"})
        assert r.status_code == 201
    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/customers", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        sizes.append(len(page["items"]))
        for item in page["items"]:
            assert set(item) == {"id", "external_id", "region", "created_at", "updated_at"}
            seen.append(item["external_id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [3, 3, 1]
    assert cursor is None
    assert sorted(seen) == [f"cust-{i}" for i in range(7)]
    assert len(set(seen)) == 7


async def test_bad_cursor_is_422(client: Client) -> None:
    """A cursor this service did not issue is a 422 on field `cursor`."""
    r = await client.get("/v1/customers", params={"cursor": "not-a-cursor!!"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "cursor"
    r = await client.get("/v1/customers", params={"cursor": "WzEsMl0"})  # [1,2]: wrong arity
    assert r.status_code == 422


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("latin-1")
    return str(value)


async def test_personal_data_is_not_stored_in_clear(client: Client, core: Core) -> None:
    """The subjects row holds no email, phone or first name in any column; plan stays plain."""
    r = await put(
        client,
        "c-1",
        region="EU",
        identities={"email": "zelda.quux@example.org", "phone": "+44 7700 900123"},
        attributes={
            "first_name": "Zeldabeth",
            "plan": "enterprise-gold",
            "monthly_spend": 4321.987654,
        },
    )
    assert r.status_code == 201
    rows = await core.db.fetch("SELECT * FROM subjects WHERE external_id = ?", "c-1")
    assert len(rows) == 1
    row = rows[0]
    everything = "\n".join(_as_text(v) for v in row.values())
    for secret in (
        "zelda.quux",
        "example.org",
        "7700900123",
        "7700 900123",
        "Zeldabeth",
        "4321.987654",
    ):
        assert secret not in everything, f"{secret!r} is stored in clear"
    assert row["identities_enc"] is not None
    attributes = row["attributes"]
    plain = json.loads(attributes) if isinstance(attributes, str) else attributes
    assert plain == {"plan": "enterprise-gold"}
