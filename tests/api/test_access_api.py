"""Access over the API on both engines: scoped API keys, revocation, and customer tokens."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from consentry.access.keys import bootstrap_admin_key
from consentry.app import create_app
from consentry.boot import close_core, open_core
from consentry.clock import FrozenClock
from consentry.settings import Settings

Client = httpx.AsyncClient


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def new_key(client: Client, *scopes: str, name: str = "k") -> str:
    r = await client.post("/v1/api-keys", json={"name": name, "scopes": list(scopes)})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["api_key"]["scopes"] == sorted(scopes)
    key: str = body["key"]
    assert key.startswith(f"ck_{body['api_key']['id']}_")
    return key


@pytest.fixture
async def customer(client: Client) -> str:
    r = await client.put(
        "/v1/customers/c-1", json={"region": "EU", "identities": {"email": "ann@example.com"}}
    )
    assert r.status_code == 201, r.text
    return "c-1"


GRANT = {"decisions": [{"purpose": "analytics", "decision": "granted"}]}


async def status_of(
    client: Client, key: str, method: str, url: str, body: dict[str, Any] | None = None
) -> int:
    r = await client.request(method, url, json=body, headers=bearer(key))
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")
    return r.status_code


async def test_scope_matrix(client: Client, customer: str) -> None:
    """Each scope reaches what it names and nothing more; only admin manages keys."""
    read = await new_key(client, "backend:read")
    write = await new_key(client, "backend:write")
    compliance = await new_key(client, "compliance:read")
    admin = await new_key(client, "admin")

    reads = [
        ("GET", "/v1/customers/c-1"),
        ("GET", "/v1/customers"),
        ("GET", "/v1/customers/c-1/consents"),
        ("GET", "/v1/customers/c-1/consents/history"),
        ("GET", "/v1/customers/c-1/check?purpose=analytics"),
        ("GET", "/v1/customers/c-1/preferences"),
        ("GET", "/v1/customers/c-1/events"),
    ]
    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("PUT", "/v1/customers/c-1", {"attributes": {"plan": "pro"}}),
        ("POST", "/v1/customers/c-1/consents", GRANT),
        ("PATCH", "/v1/customers/c-1/preferences", {"language": "en"}),
        ("POST", "/v1/customers/c-1/events", {"name": "feature_used"}),
        ("POST", "/v1/customers/c-1/token", {}),
    ]
    for key in (read, write, compliance, admin):
        for method, url in reads:
            assert await status_of(client, key, method, url) == 200, (key[:20], url)
    for method, url, body in writes:
        assert await status_of(client, read, method, url, body) == 403, url
        assert await status_of(client, compliance, method, url, body) == 403, url
        assert await status_of(client, write, method, url, body) in (200, 201), url
        assert await status_of(client, admin, method, url, body) in (200, 201), url

    new = {"name": "x", "scopes": ["backend:read"]}
    for key in (read, write, compliance):
        assert await status_of(client, key, "POST", "/v1/api-keys", new) == 403
        assert await status_of(client, key, "GET", "/v1/api-keys") == 403
    assert await status_of(client, admin, "POST", "/v1/api-keys", new) == 201
    assert await status_of(client, admin, "GET", "/v1/api-keys") == 200


async def test_forbidden_names_the_scope(client: Client, customer: str) -> None:
    """A 403 says which scope the call needs."""
    read = await new_key(client, "backend:read")
    r = await client.post("/v1/customers/c-1/consents", json=GRANT, headers=bearer(read))
    assert r.status_code == 403
    assert "backend:write" in r.json()["detail"]
    r = await client.get("/v1/customers/c-1/consents/history")
    assert r.json()["items"] == []


async def test_unknown_scope_is_422(client: Client) -> None:
    """A scope that does not exist is refused."""
    r = await client.post("/v1/api-keys", json={"name": "x", "scopes": ["root"]})
    assert r.status_code == 422
    r = await client.post("/v1/api-keys", json={"name": "x", "scopes": []})
    assert r.status_code == 422


async def test_revoked_key_is_refused_at_once(client: Client, customer: str) -> None:
    """After revocation the key gets 401 on its very next request."""
    key = await new_key(client, "backend:write")
    assert await status_of(client, key, "GET", "/v1/customers/c-1") == 200  # cached now
    key_id = key.split("_")[1]
    r = await client.delete(f"/v1/api-keys/{key_id}")
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is not None
    r = await client.get("/v1/customers/c-1", headers=bearer(key))
    assert r.status_code == 401
    assert r.headers.get("www-authenticate") == "Bearer"
    # revoking again is harmless; an unknown key is 404
    r = await client.delete(f"/v1/api-keys/{key_id}")
    assert r.status_code == 200
    assert (await client.delete("/v1/api-keys/0123456789abcdef")).status_code == 404


async def test_listing_keys_pages_and_hides_secrets(client: Client, admin_key: str) -> None:
    """Keys list in pages; no listing holds a secret, a full key or a hash."""
    keys = [await new_key(client, "backend:read", name=f"key {i}") for i in range(4)]
    revoked_id = keys[0].split("_")[1]
    assert (await client.delete(f"/v1/api-keys/{revoked_id}")).status_code == 200

    pages: list[list[dict[str, Any]]] = []
    cursor = None
    raw = ""
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/api-keys", params=params)
        assert r.status_code == 200, r.text
        raw += r.text
        pages.append(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10
    assert [len(p) for p in pages] == [2, 2, 1]
    items = [item for page in pages for item in page]
    assert len({i["id"] for i in items}) == 5
    for item in items:
        assert set(item) == {"id", "name", "scopes", "created_by", "created_at", "revoked_at"}
    by_id = {i["id"]: i for i in items}
    assert by_id[revoked_id]["revoked_at"] is not None
    assert by_id[admin_key.split("_")[1]]["scopes"] == ["admin"]
    for full in [admin_key, *keys]:
        secret = full.split("_", 2)[2]
        assert secret not in raw
    assert "hash" not in raw.lower()
    assert "secret" not in raw.lower()


async def customer_token(client: Client, external_id: str = "c-1", **body: Any) -> str:
    r = await client.post(f"/v1/customers/{external_id}/token", json=body)
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


async def test_customer_token_reaches_only_me(client: Client, customer: str) -> None:
    """A customer token reads and changes its own consents and preferences, nothing else."""
    token = await customer_token(client)
    me = bearer(token)

    r = await client.get("/v1/me/consents", headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []
    r = await client.post(
        "/v1/me/consents",
        json={
            "decisions": [{"purpose": "analytics", "decision": "granted"}],
            "source": "preference_center",
        },
        headers=me,
    )
    assert r.status_code == 201, r.text
    record = r.json()["records"][0]
    assert record["actor"].startswith("customer:")
    assert record["source"] == "preference_center"
    r = await client.get("/v1/me/consents", headers=me)
    assert [(x["purpose"], x["decision"]) for x in r.json()["items"]] == [("analytics", "granted")]
    r = await client.get("/v1/me/consents/history", headers=me)
    assert len(r.json()["items"]) == 1

    r = await client.patch("/v1/me/preferences", json={"channels": {"email": False}}, headers=me)
    assert r.status_code == 200, r.text
    r = await client.get("/v1/me/preferences", headers=me)
    assert r.json()["channels"] == {"email": False}

    # what the customer did is what the backend sees
    r = await client.get("/v1/customers/c-1/check", params={"purpose": "analytics"})
    assert r.json()["decision"] == "allow"
    r = await client.get("/v1/customers/c-1/preferences")
    assert r.json()["channels"] == {"email": False}

    for method, url in [
        ("GET", "/v1/customers/c-1"),
        ("GET", "/v1/customers/c-1/consents"),
        ("GET", "/v1/customers/c-1/preferences"),
        ("GET", "/v1/customers"),
        ("POST", "/v1/customers/c-1/consents"),
        ("GET", "/v1/api-keys"),
    ]:
        body = GRANT if method == "POST" else None
        assert await status_of(client, token, method, url, body) == 403, url


async def test_tokens_of_two_customers_stay_apart(client: Client, customer: str) -> None:
    """Each token sees its own customer's consents only."""
    assert (await client.put("/v1/customers/c-2", json={"region": "EU"})).status_code == 201
    one, two = await customer_token(client, "c-1"), await customer_token(client, "c-2")
    r = await client.post("/v1/me/consents", json=GRANT, headers=bearer(one))
    assert r.status_code == 201
    r = await client.get("/v1/me/consents", headers=bearer(two))
    assert r.json()["items"] == []


async def test_tampered_token_is_401(client: Client, customer: str) -> None:
    """A token whose payload or signature was changed is refused with 401."""
    token = await customer_token(client)
    payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for bad in (f"{payload}.{flipped}", f"{payload[:-1]}x.{signature}", "not-a-token", token + "x"):
        r = await client.get("/v1/me/consents", headers=bearer(bad))
        assert r.status_code == 401, bad
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_api_key_cannot_use_me(client: Client, customer: str) -> None:
    """/v1/me is for customers: an API key, even admin, gets 403."""
    for method, url in [
        ("GET", "/v1/me/consents"),
        ("GET", "/v1/me/preferences"),
        ("POST", "/v1/me/consents"),
    ]:
        r = await client.request(method, url, json=GRANT if method == "POST" else None)
        assert r.status_code == 403, url
        assert "customer token" in r.json()["detail"]


async def test_token_for_unknown_customer_is_404(client: Client) -> None:
    """No token is issued for a customer that does not exist; ttl is bounded."""
    r = await client.post("/v1/customers/ghost/token", json={})
    assert r.status_code == 404
    assert (await client.put("/v1/customers/c-1", json={})).status_code == 201
    r = await client.post("/v1/customers/c-1/token", json={"ttl_seconds": 5})
    assert r.status_code == 422
    assert r.json()["field"] == "ttl_seconds"


@pytest.fixture
async def frozen(settings: Settings) -> AsyncIterator[tuple[Client, FrozenClock]]:
    clock = FrozenClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    core = await open_core(settings, clock=clock)
    try:
        key = await bootstrap_admin_key(core)
        assert key is not None
        app = create_app(settings, core=core, clock=clock)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://testserver",
            headers=bearer(key),
        ) as client:
            yield client, clock
    finally:
        await close_core(core)


async def test_expired_token_is_401(frozen: tuple[Client, FrozenClock]) -> None:
    """A token works until its ttl has passed, then gets 401 saying it expired."""
    client, clock = frozen
    assert (await client.put("/v1/customers/c-1", json={})).status_code == 201
    r = await client.post("/v1/customers/c-1/token", json={"ttl_seconds": 120})
    assert r.status_code == 201
    token = r.json()["token"]
    expires = datetime.fromisoformat(r.json()["expires_at"].replace("Z", "+00:00"))
    assert abs((expires - datetime(2026, 3, 1, 9, 2, tzinfo=UTC)).total_seconds()) < 1
    assert (await client.get("/v1/me/consents", headers=bearer(token))).status_code == 200
    clock.advance(seconds=119)
    assert (await client.get("/v1/me/consents", headers=bearer(token))).status_code == 200
    clock.advance(seconds=1)
    r = await client.get("/v1/me/consents", headers=bearer(token))
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]
    assert json.loads(r.text)["status"] == 401
