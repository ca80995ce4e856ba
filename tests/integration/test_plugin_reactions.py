"""Plugins hear of committed changes (consent_changed, event_received), each in its own context;
the list of loaded plugins is served and printed."""

from __future__ import annotations

import asyncio
import os
import sys
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from consentry.core.runtime import Core
from consentry.host.manager import Plugins
from consentry.plugins import ConsentChange, CustomerEvent, PluginContext, hookimpl
from consentry.settings import Settings
from consentry.testing import running_service


def listener() -> tuple[types.ModuleType, list[Any]]:
    heard: list[Any] = []
    module = types.ModuleType("listener")

    @hookimpl
    async def consent_changed(change: ConsentChange, context: PluginContext) -> None:
        heard.append((context.plugin, change))

    @hookimpl
    async def event_received(event: CustomerEvent) -> None:
        heard.append(("event", event))

    module.consent_changed = consent_changed  # type: ignore[attr-defined]
    module.event_received = event_received  # type: ignore[attr-defined]
    return module, heard


@pytest.fixture
async def with_listener(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, list[Any]]]:
    module, heard = listener()
    async with running_service(
        ("listener", module), database_url=database_url, tmp_path=tmp_path
    ) as service:
        yield service.client, heard


async def test_plugins_hear_committed_consents_and_events(
    with_listener: tuple[httpx.AsyncClient, list[Any]],
) -> None:
    client, heard = with_listener
    r = await client.put("/v1/customers/l-1", json={"region": "EU"})
    subject = r.json()["id"]
    r = await client.post(
        "/v1/customers/l-1/consents",
        json={
            "decisions": [
                {"purpose": "analytics", "decision": "granted"},
                {"purpose": "personalization", "decision": "denied"},
            ]
        },
    )
    assert r.status_code == 201
    changes = [c for who, c in heard if who == "listener"]
    assert [(c.purpose, c.decision) for c in changes] == [
        ("analytics", "granted"),
        ("personalization", "denied"),
    ]
    assert {str(c.subject_id) for c in changes} == {subject}
    r = await client.post("/v1/customers/l-1/events", json={"name": "signed_up"})
    assert r.status_code == 201
    events = [e for who, e in heard if who == "event"]
    assert [(e.name, str(e.subject_id)) for e in events] == [("signed_up", subject)]
    r = await client.get("/v1/plugins")
    assert r.status_code == 200
    [info] = r.json()["items"]
    assert info["name"] == "listener" and info["failures"] == 0
    assert set(info["hooks"]) == {"consent_changed", "event_received"}


async def test_a_failing_reaction_does_not_undo_the_change(
    database_url: str, tmp_path: Path
) -> None:
    module = types.ModuleType("broken")

    @hookimpl
    async def consent_changed(change: ConsentChange) -> None:
        raise RuntimeError("boom")

    module.consent_changed = consent_changed  # type: ignore[attr-defined]
    async with running_service(
        ("broken", module), database_url=database_url, tmp_path=tmp_path
    ) as service:
        client = service.client
        await client.put("/v1/customers/b-1", json={"region": "EU"})
        r = await client.post(
            "/v1/customers/b-1/consents",
            json={"decisions": [{"purpose": "analytics", "decision": "granted"}]},
        )
        assert r.status_code == 201
        state = (await client.get("/v1/customers/b-1/consents")).json()["items"]
        assert [(s["purpose"], s["decision"]) for s in state] == [("analytics", "granted")]
        [info] = (await client.get("/v1/plugins")).json()["items"]
        assert info["failures"] == 1


async def test_the_cli_lists_installed_plugins(settings: Settings) -> None:
    env = {**os.environ, "CONSENTRY_DATA_DIR": str(settings.data_dir)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "consentry.cli",
        "plugins",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    for name in Plugins.load().names():
        assert name in out.decode()


async def test_plugin_commands_run_through_the_cli(settings: Settings, core: Core) -> None:
    """A command a plugin registers runs as `consentry <name>`, with the plugin's context, on
    existing data (`core` made it: plugin commands create none)."""
    env = {
        **os.environ,
        "CONSENTRY_DATA_DIR": str(settings.data_dir),
        "CONSENTRY_DATABASE_URL": settings.database_url,
        "CONSENTRY_PLUGINS": "chat",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "consentry.cli",
        "chat-deliveries",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith("0 deliveries")
