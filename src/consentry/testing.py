"""Test a plugin against a real, running Consentry: an in-memory app on a fresh database.

    from consentry.testing import running_service

    async def test_send(tmp_path):
        async with running_service(("chat", consentry_chat), tmp_path=tmp_path) as service:
            subject_id = await service.customer("c-1", consents={"product_updates": "granted"})
            response = await service.client.post("/v1/plugins/chat/send", json={...})

As pytest fixtures: put `pytest_plugins = ["consentry.testing"]` in your top-level conftest.py
and override `consentry_plugins` (and, if needed, `consentry_policy_path`,
`consentry_database_url`) to get a `consentry_service` per test. Needs the `test` extra
(pytest, pytest-asyncio, httpx).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import httpx
import pytest
import pytest_asyncio

from consentry.access.keys import bootstrap_admin_key
from consentry.app import create_app
from consentry.boot import close_core, open_core
from consentry.clock import Clock, system_clock
from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.customers import records as customers
from consentry.domain.consent import Decision
from consentry.host.manager import Plugins
from consentry.ledger import consents, double_opt_in
from consentry.plugins.web import RouteContext
from consentry.settings import Settings

__all__ = [
    "TEST_ACTOR",
    "Service",
    "consentry_database_url",
    "consentry_plugins",
    "consentry_policy_path",
    "consentry_service",
    "running_service",
]

TEST_ACTOR = Principal("system", "consentry.testing")


@dataclass
class Service:
    """A running service: its core, an admin-authenticated HTTP client, data helpers."""

    core: Core
    client: httpx.AsyncClient
    admin_key: str

    @property
    def plugins(self) -> Plugins:
        return self.core.plugins

    def context(self, plugin: str) -> RouteContext:
        """The context the host hands `plugin`'s hooks and routes: its gate, its tables, its
        settings, its cache, the clock."""
        return self.core.plugin_context(plugin)

    async def customer(
        self,
        external_id: str,
        *,
        region: str = "EU",
        attributes: Mapping[str, Any] | None = None,
        identities: Mapping[str, str] | None = None,
        consents: Mapping[str, str] | None = None,
    ) -> UUID:
        """Create (or update) a customer and record `consents` ({purpose: decision}, every
        channel); a double opt-in grant is confirmed at once. Returns the subject id."""
        cmd = customers.CustomerUpsert(
            external_id, region, dict(identities or {}), dict(attributes or {})
        )
        customer, _ = await customers.upsert(self.core, cmd, TEST_ACTOR)
        if consents:
            await self.record(customer.id, customer.region, consents)
        return customer.id

    async def record(self, subject_id: UUID, region: str, decisions: Mapping[str, str]) -> None:
        """Record decisions ({purpose: decision}) as the API would, confirming double opt-in."""
        request = consents.RecordRequest(
            [consents.DecisionIn(p, Decision(d)) for p, d in decisions.items()]
        )
        recorded = await consents.record_for(self.core, subject_id, region, request, TEST_ACTOR)
        for pending in recorded.confirmations:
            await double_opt_in.confirm(self.core, pending.token)


def _settings(
    base: Path, policy_path: Path | str | None, database_url: str | None, timeout: float
) -> Settings:
    data_dir = base / "data"
    return Settings(
        data_dir=data_dir,
        database_url=database_url or f"sqlite:///{data_dir / 'consentry.sqlite'}",
        policy_path=Path(policy_path) if policy_path else Settings().policy_path,
        rate_limits=False,
        log_json=True,
        plugin_timeout_seconds=timeout,
    )


@asynccontextmanager
async def running_service(
    *plugins: tuple[str, ModuleType],
    policy_path: Path | str | None = None,
    database_url: str | None = None,
    tmp_path: Path | None = None,
    timeout: float = 5.0,
    clock: Clock = system_clock,
    loaded: Plugins | None = None,
) -> AsyncIterator[Service]:
    """A core and app with exactly `plugins` ((name, module) pairs; `loaded` instead to pass
    a ready `Plugins`), on `database_url` (default: a new SQLite file under `tmp_path`, or a
    temporary directory), with `policy_path` (default: the bundled default policy)."""
    async with AsyncExitStack() as stack:
        if tmp_path is None:
            tmp_path = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = _settings(tmp_path, policy_path, database_url, timeout)
        chosen = loaded if loaded is not None else Plugins.of(*plugins, timeout=timeout)
        core = await open_core(settings, clock=clock, plugins=chosen)
        stack.push_async_callback(close_core, core)
        admin_key = await bootstrap_admin_key(core)
        assert admin_key is not None, "a fresh database bootstraps one admin key"
        app: Any = create_app(settings, clock=clock, core=core)  # an ASGI app; typed narrower
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {admin_key}"},
        )
        await stack.enter_async_context(client)
        yield Service(core, client, admin_key)


# -- pytest fixtures (`pytest_plugins = ["consentry.testing"]`) ---------------------------------


@pytest.fixture
def consentry_plugins() -> Sequence[tuple[str, ModuleType]]:
    """The plugins `consentry_service` runs with: override it with your (name, module) pairs."""
    return ()


@pytest.fixture
def consentry_policy_path() -> Path | None:
    """The policy `consentry_service` runs with: override it (None: the bundled default)."""
    return None


@pytest.fixture
def consentry_database_url() -> str | None:
    """The database `consentry_service` runs on: override it (None: a new SQLite file)."""
    return None


@pytest_asyncio.fixture
async def consentry_service(
    consentry_plugins: Sequence[tuple[str, ModuleType]],
    consentry_policy_path: Path | None,
    consentry_database_url: str | None,
    tmp_path: Path,
) -> AsyncIterator[Service]:
    """A running service with `consentry_plugins`, fresh for each test."""
    async with running_service(
        *consentry_plugins,
        policy_path=consentry_policy_path,
        database_url=consentry_database_url,
        tmp_path=tmp_path,
    ) as service:
        yield service


async def run_cli(settings: Settings, *args: str, timeout: float = 120) -> tuple[int, str, str]:
    """`consentry ARGS...` in a real process on this service's database: (exit code, standard
    output, standard error). For testing commands, plugin commands included."""
    env = {
        **os.environ,
        "CONSENTRY_DATA_DIR": str(settings.data_dir),
        "CONSENTRY_DATABASE_URL": settings.database_url,
        "CONSENTRY_LOG_LEVEL": "warning",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "consentry.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
