"""Download links are built from the configured public URL, never from the request's Host."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from consentry.app import create_app
from consentry.core.runtime import Core
from consentry.server import with_public_url
from consentry.settings import Settings


async def fulfilled_access(client: httpx.AsyncClient, external_id: str) -> str:
    """A customer with a fulfilled access request (an export to link to): the request's id."""
    r = await client.put(f"/v1/customers/{external_id}", json={"region": "EU"})
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/requests", json={"external_id": external_id, "type": "access", "verified_by": "login"}
    )
    assert r.status_code == 201, r.text
    request_id = str(r.json()["id"])
    r = await client.post(f"/v1/requests/{request_id}/fulfil")
    assert r.status_code == 200, r.text
    return request_id


@pytest.mark.parametrize(
    "headers",
    [{"Host": "evil.example"}, {"X-Forwarded-Host": "evil.example"}, {}],
    ids=["host", "forwarded-host", "none"],
)
async def test_a_link_is_built_from_the_public_url_whatever_the_host(
    client: httpx.AsyncClient, settings: Settings, headers: dict[str, str]
) -> None:
    """The download link starts with CONSENTRY_PUBLIC_URL, whatever Host the request names."""
    request_id = await fulfilled_access(client, "link-1")
    r = await client.post(f"/v1/requests/{request_id}/download-link", headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["url"].startswith(settings.public_url.rstrip("/") + "/v1/exports/")


async def test_without_a_public_url_no_link_is_issued(
    core: Core, settings: Settings, admin_key: str
) -> None:
    """With no public URL configured, asking for a link answers 503 naming
    CONSENTRY_PUBLIC_URL, and no link is issued (none is audited)."""
    unset = replace(settings, public_url="")
    app = create_app(unset, core=replace(core, settings=unset))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {admin_key}"},
    ) as client:
        request_id = await fulfilled_access(client, "link-2")
        r = await client.post(f"/v1/requests/{request_id}/download-link")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "CONSENTRY_PUBLIC_URL" in r.json()["detail"]
    issued = await core.db.fetch(
        "SELECT seq FROM audit_log WHERE action = 'dsr.export_link.issued'"
    )
    assert issued == []


@pytest.mark.parametrize(
    ("host", "configured", "expected"),
    [
        ("127.0.0.1", "", "http://127.0.0.1:8123"),
        ("localhost", "", "http://localhost:8123"),
        ("::1", "", "http://[::1]:8123"),
        ("0.0.0.0", "", ""),
        ("10.1.2.3", "", ""),
        ("127.0.0.1", "https://consent.example.com", "https://consent.example.com"),
    ],
)
def test_serve_defaults_the_public_url_only_on_loopback(
    host: str, configured: str, expected: str
) -> None:
    """`consentry serve` on a loopback address, where only this machine can follow a link,
    defaults the public URL to that address; anywhere else it stays explicit."""
    settings = with_public_url(Settings(public_url=configured), host, 8123)
    assert settings.public_url == expected


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("https://consent.example.com/", "https://consent.example.com"), ("", "")],
)
def test_the_public_url_comes_from_the_environment(raw: str, stored: str) -> None:
    """CONSENTRY_PUBLIC_URL sets the public URL (a trailing slash is dropped)."""
    assert Settings.from_env({"CONSENTRY_PUBLIC_URL": raw}).public_url == stored
