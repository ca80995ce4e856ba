"""Fixtures for the segments plugin: a core with only this plugin, a frozen clock, and a policy
whose marketing_email purpose also uses behavior and location data (the default one uses only
contact, identity and profile, so it refuses event filters: a test shows that too)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import consentry_segments
import httpx
import pytest

from consentry.access.keys import bootstrap_admin_key
from consentry.app import create_app
from consentry.boot import close_core, open_core
from consentry.clock import FrozenClock
from consentry.core.runtime import Core
from consentry.host.manager import Plugins
from consentry.settings import DEFAULT_POLICY, Settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DEFAULT_CATEGORIES = "    categories: [contact, identity, profile]\n    channels: [email]"
WIDER_CATEGORIES = (
    "    categories: [contact, identity, profile, behavior, location]\n    channels: [email]"
)


def wider_policy(directory: Path) -> Path:
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert text.count(DEFAULT_CATEGORIES) == 1
    path = directory / "policy.yaml"
    path.write_text(text.replace(DEFAULT_CATEGORIES, WIDER_CATEGORIES), encoding="utf-8")
    return path


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def seg_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        rate_limits=False,
        log_json=True,
        policy_path=wider_policy(tmp_path),
    )


@pytest.fixture
async def seg_core(seg_settings: Settings, clock: FrozenClock) -> AsyncIterator[Core]:
    plugins = Plugins.of(("segments", consentry_segments))
    opened = await open_core(seg_settings, clock=clock, plugins=plugins)
    try:
        yield opened
    finally:
        await close_core(opened)


@pytest.fixture
async def seg_client(seg_core: Core, seg_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    key = await bootstrap_admin_key(seg_core)
    assert key is not None
    app = create_app(seg_settings, core=seg_core)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        yield client
