"""Shared fixtures: every integration test runs on SQLite and on PostgreSQL.

`CONSENTRY_TEST_BACKENDS` (default "sqlite,postgres") picks the engines; PostgreSQL is reached at
`CONSENTRY_TEST_POSTGRES_URL` (default postgresql://postgres@127.0.0.1:5432/test). An unreachable
PostgreSQL fails the tests: it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from consentry.access.keys import bootstrap_admin_key
from consentry.app import create_app
from consentry.boot import close_core, open_core
from consentry.core.runtime import Core
from consentry.host.manager import first_party
from consentry.settings import Settings

POSTGRES_URL = os.environ.get(
    "CONSENTRY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = [
    b.strip() for b in os.environ.get("CONSENTRY_TEST_BACKENDS", "sqlite,postgres").split(",")
]


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}search_path={schema}"


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'consentry.sqlite'}"
        return
    schema = "t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        yield with_search_path(POSTGRES_URL, schema)
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema}_keys CASCADE")
        await conn.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # the service as shipped: first-party plugins only (third-party ones have their own tests)
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        rate_limits=False,
        log_json=True,
        plugins=",".join(first_party()),
        public_url="https://consent.example.com",  # download links are built from it
    )


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    """A running core (policy, both stores, writer) on a fresh database."""
    opened = await open_core(settings)
    try:
        yield opened
    finally:
        await close_core(opened)


@pytest.fixture
async def admin_key(core: Core) -> str:
    key = await bootstrap_admin_key(core)
    assert key is not None
    return key


@pytest.fixture
async def client(
    core: Core, settings: Settings, admin_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app in this event loop, authenticated with the bootstrap admin key."""
    app = create_app(settings, core=core)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as test_client:
        yield test_client
