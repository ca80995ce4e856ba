"""Every error is application/problem+json with type, title, status and detail, on both engines."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from consentry.app import create_app
from consentry.core.runtime import Core
from consentry.settings import Settings

Client = httpx.AsyncClient


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0].strip() == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    for name in ("type", "title", "detail"):
        assert isinstance(body[name], str) and body[name], name
    return body


@pytest.fixture
async def customer(client: Client) -> str:
    r = await client.put("/v1/customers/c-1", json={"region": "EU"})
    assert r.status_code == 201, r.text
    return "c-1"


@asynccontextmanager
async def app_client(settings: Settings, core: Core, key: str) -> AsyncIterator[Client]:
    app = create_app(settings, core=core)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        yield client


async def test_missing_or_garbage_auth_is_401(client: Client, customer: str) -> None:
    """No credential, a non-bearer scheme, a malformed or unknown key: 401 with WWW-Authenticate."""
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer ck_garbage"},
        {"Authorization": "Bearer ck_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        {"Authorization": "Bearer eyJ.junk"},
    ):
        r = await client.get("/v1/customers/c-1", headers=headers)
        body = assert_problem(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
        assert body["title"] == "Unauthorized"
        assert body["instance"] == "/v1/customers/c-1"
    r = await client.get("/v1/customers/c-1", headers={"Authorization": ""})
    assert "Bearer" in r.json()["detail"]


async def test_forbidden_is_403(client: Client, customer: str) -> None:
    """A read-only key writing gets a 403 problem."""
    r = await client.post("/v1/api-keys", json={"name": "r", "scopes": ["backend:read"]})
    key = r.json()["key"]
    r = await client.put(
        "/v1/customers/c-1", json={"region": "US"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert_problem(r, 403)


async def test_not_found_is_404(client: Client) -> None:
    """An unknown route and an unknown customer are both 404 problems."""
    body = assert_problem(await client.get("/v1/nothing-here"), 404)
    assert body["instance"] == "/v1/nothing-here"
    assert "/schema" in body["detail"]  # says where the API is described
    body = assert_problem(await client.get("/v1/customers/ghost"), 404)
    assert "ghost" in body["detail"]
    assert_problem(await client.get("/v1/customers/ghost/check", params={"purpose": "x"}), 404)


async def test_wrong_method_is_405(client: Client) -> None:
    """A method the route does not take is a 405 problem."""
    assert_problem(await client.delete("/v1/purposes"), 405)
    assert_problem(await client.patch("/v1/customers/c-1/consents", json={}), 405)


async def test_body_too_large_is_413(settings: Settings, core: Core, admin_key: str) -> None:
    """A body larger than max_body_bytes is a 413 problem and nothing is stored."""
    small = dataclasses.replace(settings, max_body_bytes=512)
    async with app_client(small, core, admin_key) as client:
        r = await client.put("/v1/customers/c-1", json={"attributes": {"plan": "x" * 100}})
        assert r.status_code == 201, r.text
        r = await client.put("/v1/customers/c-2", json={"attributes": {"plan": "x" * 2000}})
        assert_problem(r, 413)
        assert_problem(await client.get("/v1/customers/c-2"), 404)


async def test_invalid_body_is_422_naming_the_field(client: Client, customer: str) -> None:
    """A wrong type, value or unknown field is a 422 whose field says where."""
    url = "/v1/customers/c-1/consents"
    r = await client.post(url, json={"decisions": [{"purpose": "analytics", "decision": 1}]})
    body = assert_problem(r, 422)
    assert body["field"] == "decisions[0].decision"
    r = await client.post(url, json={"decisions": [{"purpose": "analytics", "decision": "maybe"}]})
    assert assert_problem(r, 422)["field"] == "decisions[0].decision"
    r = await client.post(url, json={"decisions": [{"purpose": "analytics"}]})
    body = assert_problem(r, 422)
    assert "decision" in body["detail"]
    r = await client.post(url, json={"decisions": [], "surprise": True})
    assert "surprise" in assert_problem(r, 422)["detail"]
    r = await client.put("/v1/customers/c-1", json={"region": 7})
    assert assert_problem(r, 422)["field"] == "region"
    r = await client.get("/v1/customers", params={"limit": 0})
    assert_problem(r, 422)
    r = await client.get("/v1/customers/c-1/consents/history")
    assert r.json()["items"] == []


async def test_bad_external_id_is_422(client: Client) -> None:
    """An external id outside the allowed alphabet is a 422 on field external_id."""
    r = await client.put("/v1/customers/-bad", json={})
    assert assert_problem(r, 422)["field"] == "external_id"


async def test_malformed_json_is_400(client: Client, customer: str) -> None:
    """A body that is not JSON is a 400 problem and nothing is recorded."""
    r = await client.post(
        "/v1/customers/c-1/consents",
        content=b'{"decisions": [',
        headers={"Content-Type": "application/json"},
    )
    assert_problem(r, 400)
    r = await client.put(
        "/v1/customers/c-2", content=b"not json", headers={"Content-Type": "application/json"}
    )
    assert "JSON" in assert_problem(r, 400)["detail"]
    assert_problem(await client.get("/v1/customers/c-2"), 404)


async def test_problem_carries_request_id(client: Client) -> None:
    """The problem's request_id is the X-Request-Id header of the same response."""
    r = await client.get("/v1/customers/ghost")
    body = assert_problem(r, 404)
    assert body["request_id"] == r.headers["x-request-id"]
    assert len(body["request_id"]) == 32


async def test_rate_limit_is_429(settings: Settings, core: Core, admin_key: str) -> None:
    """With a limit of 3 a minute the 4th request is a 429 problem with Retry-After."""
    limited = dataclasses.replace(settings, rate_limits=True, rate_limit_key_per_minute=3)
    async with app_client(limited, core, admin_key) as client:
        for _ in range(3):
            assert (await client.get("/v1/purposes")).status_code == 200
        with capture_logs() as logs:
            r = await client.get("/v1/purposes")
        body = assert_problem(r, 429)
        assert "Retry-After" in body["detail"]
        retry_after = r.headers.get("retry-after")
        assert retry_after is not None and 0 < int(retry_after) <= 60
        # the access log records what the client got, not a 500
        [line] = [e for e in logs if e["event"] == "request"]
        assert line["status"] == 429
        # health stays reachable for probes
        assert (await client.get("/health")).status_code == 200


async def test_405_carries_the_request_id(client: Client) -> None:
    """A 405 on a known route carries the request id of its response."""
    r = await client.delete("/v1/purposes")
    body = assert_problem(r, 405)
    assert body.get("request_id") == r.headers.get("x-request-id")


async def test_unrouted_404_has_a_request_id(client: Client) -> None:
    """An unknown route's 404 problem still carries a request id, like every other answer."""
    r = await client.get("/v1/nothing-here")
    body = assert_problem(r, 404)
    assert r.headers.get("x-request-id")
    assert body.get("request_id") == r.headers["x-request-id"]


async def test_missing_credential_is_a_401_before_any_parameter_check(client: Client) -> None:
    """Without a credential the answer is 401, even when a required parameter is missing too."""
    r = await client.get("/v1/customers/c-1/check", headers={"Authorization": ""})
    body = assert_problem(r, 401)
    assert "Bearer" in body["detail"]
    r = await client.post(
        "/v1/customers/c-1/consents", headers={"Authorization": ""}, content=b"{not json"
    )
    assert_problem(r, 401)


@pytest.mark.parametrize(
    ("url", "authenticated"),
    [
        ("/v1/confirmations", False),
        ("/v1/verifications", False),
        ("/v1/customers/c-1", True),
        ("/v1/plugins/segments", True),  # a plugin's route
    ],
)
async def test_deeply_nested_json_is_400_naming_the_limit(
    client: Client, url: str, authenticated: bool
) -> None:
    """A body nested 1,000 levels deep is a 400 problem naming the nesting limit, not a 500."""
    headers = {"Content-Type": "application/json"}
    if not authenticated:
        headers["Authorization"] = ""
    body = b"[" * 1000 + b"]" * 1000
    send = client.put if url.startswith("/v1/customers") else client.post
    r = await send(url, content=body, headers=headers)
    assert "64 levels" in assert_problem(r, 400)["detail"]


SCOPES = "admin, compliance:read, compliance:write, backend:write, backend:read"


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "expected"),
    [
        ("POST", "/v1/api-keys", {"json": {"name": "k", "scopes": ["read"]}}, SCOPES),
        ("GET", "/v1/audit/entries", {"params": {"order": "up"}}, "'up' is not one of: desc, asc"),
    ],
)
async def test_an_enum_error_lists_the_allowed_values(
    client: Client, method: str, url: str, kwargs: dict[str, Any], expected: str
) -> None:
    """A value outside a set (in a body or a query) is a 422 whose detail lists the set."""
    r = await client.request(method, url, **kwargs)
    assert expected in assert_problem(r, 422)["detail"]


async def test_every_invalid_field_is_reported(client: Client) -> None:
    """Two bad fields in one body: both are in errors[], field and detail lead with the first."""
    r = await client.post("/v1/api-keys", json={"name": "", "scopes": ["admin", "read"]})
    body = assert_problem(r, 422)
    assert [e["field"] for e in body["errors"]] == ["name", "scopes[1]"]
    assert body["field"] == "name"
    assert "'read' is not one of" in body["errors"][1]["detail"]


@pytest.mark.parametrize(
    ("since", "seen"),
    [
        ("2026-01-02", ["b"]),  # a date: its midnight UTC
        ("2026-01-01T23:00:00Z", ["b", "a"]),
        ("2026-01-02T09:00:00+09:00", ["b"]),  # midnight UTC in Tokyo time
        ("2026-01-02T00:00:01Z", []),
    ],
)
async def test_since_takes_a_date_or_any_rfc3339_time(
    client: Client, customer: str, since: str, seen: list[str]
) -> None:
    """`since` accepts a date (midnight UTC) and RFC 3339 times with any offset alike."""
    for name, at in (("a", "2026-01-01T23:30:00Z"), ("b", "2026-01-02T00:00:00Z")):
        r = await client.post(
            f"/v1/customers/{customer}/events", json={"name": name, "occurred_at": at}
        )
        assert r.status_code == 201, r.text
    r = await client.get(f"/v1/customers/{customer}/events", params={"since": since})
    assert r.status_code == 200, r.text
    assert [e["name"] for e in r.json()["items"]] == seen


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/v1/audit/entries", "since"),
        ("/v1/audit/entries", "until"),
        ("/v1/customers/c-1/consent-proof", "at"),
    ],
)
async def test_a_time_parameter_takes_a_date(
    client: Client, customer: str, url: str, name: str
) -> None:
    """since, until and at take a plain date as well as a date-time."""
    r = await client.get(url, params={name: "2026-12-01"})
    assert r.status_code == 200, r.text


async def test_a_bad_time_names_the_accepted_forms(client: Client) -> None:
    """A time that is neither a date nor an RFC 3339 date-time is a 422 showing both forms."""
    r = await client.get("/v1/audit/entries", params={"since": "yesterday"})
    body = assert_problem(r, 422)
    assert body["field"] == "since"
    assert "RFC 3339" in body["detail"] and "2026-12-05" in body["detail"]
