"""Data files are private: everything the service writes (data store, key store, their WAL and
SHM, secrets, exports) is readable by its owner only (0600), whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from consentry.access.keys import bootstrap_admin_key, create_key
from consentry.app import create_app
from consentry.boot import close_core, open_core
from consentry.core.principals import SYSTEM
from consentry.settings import Settings
from consentry.testing import run_cli as consentry


@pytest.fixture(autouse=True)
def lax_umask() -> Iterator[None]:
    """The usual 022 umask: files would come out 0644 unless created private on purpose."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative name) with its permission bits in octal."""
    return {
        str(p.relative_to(folder)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def sqlite_settings(tmp_path: Path) -> Settings:
    data = tmp_path / "data"
    return Settings(data_dir=data, database_url=f"sqlite:///{data / 'consentry.sqlite'}")


def loose(files: dict[str, str]) -> dict[str, str]:
    return {name: mode for name, mode in files.items() if mode != "0o600"}


async def write_some(settings: Settings) -> dict[str, str]:
    """Start the service, write a customer, and stop; the file modes seen while it ran."""
    core = await open_core(settings)
    try:
        key = await bootstrap_admin_key(core)  # the first start only; later, a new key
        key = key or (await create_key(core, "again", ["admin"], SYSTEM)).key
        app = create_app(settings, core=core)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            r = await client.put("/v1/customers/c-1", json={"identities": {"email": "a@b.io"}})
            assert r.status_code in (200, 201), r.text
            files = modes(settings.data_dir)  # while open: WAL and SHM files exist
    finally:
        await close_core(core)
    assert {"consentry.sqlite-wal", "keys.sqlite-wal", "secrets/kek.key"} <= set(files)
    return files


async def test_a_started_service_writes_only_private_files(tmp_path: Path) -> None:
    """Data store, key store, WAL, SHM and secrets of a service that wrote are all 0600."""
    settings = sqlite_settings(tmp_path)
    assert loose(await write_some(settings)) == {}
    assert loose(modes(settings.data_dir)) == {}
    assert oct(stat.S_IMODE(settings.data_dir.stat().st_mode)) == "0o700"


async def test_files_left_readable_by_an_older_version_are_made_private(tmp_path: Path) -> None:
    """A data folder whose files are 0644 is tightened to 0600 when the service opens it."""
    settings = sqlite_settings(tmp_path)
    await write_some(settings)
    for path in settings.data_dir.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    assert loose(await write_some(settings)) == {}


async def test_cli_exports_are_private(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    """A customer's export bundle and an audit export written by the CLI are 0600."""
    r = await client.put("/v1/customers/c-x", json={"identities": {"email": "x@x.io"}})
    assert r.status_code == 201
    r = await client.post(
        "/v1/requests", json={"external_id": "c-x", "type": "access", "verified_by": "login"}
    )
    assert r.status_code == 201, r.text
    assert (await client.post(f"/v1/requests/{r.json()['id']}/fulfil")).status_code == 200
    out = tmp_path / "out"
    out.mkdir()
    commands = [
        ("requests", "export", r.json()["id"], "--output", str(out / "bundle.zip")),
        ("audit", "export", "--output", str(out / "audit.jsonl")),
    ]
    for command in commands:
        code, _, err = await consentry(settings, *command)
        assert code == 0, err
    assert modes(out) == {"audit.jsonl": "0o600", "bundle.zip": "0o600"}
