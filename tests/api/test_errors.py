"""Every error is application/problem+json with type, title, status and detail, on both engines."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from consentry.api.app import create_app
from consentry.services.core import Core
from consentry.settings import Settings

Client = httpx.AsyncClient


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0].strip() == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body.get("request_id") == r.headers.get("x-request-id")
    return body


@pytest.fixture
async def customer(client: Client) -> str:
    r = await client.put("/v1/customers/c-1", json={"region": "EU"})
    assert r.status_code == 201, r.text
    return "c-1"


@asynccontextmanager_fixture := None  # placeholder removed below
