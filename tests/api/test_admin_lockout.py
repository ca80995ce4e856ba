"""Admins cannot lock everyone out (both engines): the last active admin key cannot be revoked."""

from __future__ import annotations

import httpx

from consentry.core.runtime import Core

Client = httpx.AsyncClient


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def key_id(key: str) -> str:
    return key.split("_")[1]


async def new_admin(client: Client, name: str = "second admin") -> str:
    r = await client.post("/v1/api-keys", json={"name": name, "scopes": ["admin"]})
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


async def test_revoking_the_last_admin_key_is_a_409(client: Client, admin_key: str) -> None:
    """The only admin key cannot revoke itself; the 409 says to create another admin key first."""
    r = await client.delete(f"/v1/api-keys/{key_id(admin_key)}")
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "create another admin key first" in r.json()["detail"].lower()
    assert (await client.get("/v1/api-keys")).status_code == 200


async def test_a_refused_revocation_records_nothing(
    client: Client, core: Core, admin_key: str
) -> None:
    """A refused revocation leaves the key active and writes no audit entry."""
    await client.delete(f"/v1/api-keys/{key_id(admin_key)}")
    row = await core.db.fetchrow(
        "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'api_key.revoked'"
    )
    assert row is not None and row["n"] == 0
    listed = (await client.get("/v1/api-keys")).json()["items"]
    assert [k["revoked_at"] for k in listed] == [None]


async def test_own_key_goes_when_another_admin_remains(client: Client, admin_key: str) -> None:
    """An admin may revoke their own key while another admin key is active; it stops at once."""
    other = await new_admin(client)
    r = await client.delete(f"/v1/api-keys/{key_id(admin_key)}")
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/api-keys")).status_code == 401
    assert (await client.get("/v1/api-keys", headers=bearer(other))).status_code == 200


async def test_the_remaining_admin_becomes_the_last(client: Client, admin_key: str) -> None:
    """Of two admin keys one may go; the other is then the last and stays."""
    other = await new_admin(client)
    assert (await client.delete(f"/v1/api-keys/{key_id(other)}")).status_code == 200
    assert (await client.delete(f"/v1/api-keys/{key_id(admin_key)}")).status_code == 409


async def test_other_scopes_do_not_count_as_admin(client: Client, admin_key: str) -> None:
    """Keys without the admin scope do not keep the last admin key revocable."""
    for scope in ("backend:write", "compliance:write"):
        r = await client.post("/v1/api-keys", json={"name": scope, "scopes": [scope]})
        assert r.status_code == 201
    assert (await client.delete(f"/v1/api-keys/{key_id(admin_key)}")).status_code == 409
