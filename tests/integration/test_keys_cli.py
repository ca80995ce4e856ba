"""`consentry keys ...` as an operator runs it (real processes, both engines): the way back in
when no admin key is left, audited as the CLI."""

from __future__ import annotations

import re

import httpx
import pytest

from consentry.core.runtime import Core
from consentry.settings import Settings
from consentry.testing import run_cli as consentry

KEY = re.compile(r"^ck_([0-9a-f]{16})_[A-Za-z0-9_-]+$")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create(settings: Settings, *args: str) -> str:
    """`keys create ARGS`: the new key, checked to be the only line on standard output."""
    code, out, err = await consentry(settings, "keys", "create", *args)
    assert code == 0, err
    assert KEY.match(out.strip()), out
    assert "shown once" in err
    return out.strip()


async def test_create_prints_a_working_admin_key_once(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """`keys create --scope admin` prints a key that manages keys over the API at once."""
    key = await create(settings, "--scope", "admin", "--name", "rescue")
    r = await client.get("/v1/api-keys", headers=bearer(key))
    assert r.status_code == 200, r.text
    mine = [k for k in r.json()["items"] if k["name"] == "rescue"]
    assert [(k["scopes"], k["created_by"]) for k in mine] == [(["admin"], "system:cli")]


async def test_keys_made_and_revoked_by_the_cli_are_audited_as_the_cli(
    client: httpx.AsyncClient, settings: Settings, core: Core
) -> None:
    """Creating and revoking from the CLI each write one audit entry whose actor is the CLI."""
    key = await create(
        settings, "--scope", "backend:read", "--scope", "backend:write", "--name", "x"
    )
    code, _, err = await consentry(settings, "keys", "revoke", KEY.match(key)[1])  # type: ignore[index]
    assert code == 0, err
    rows = await core.db.fetch(
        "SELECT actor, action FROM audit_log WHERE action LIKE 'api_key.%' AND actor <> ?"
        " ORDER BY seq",
        "system:bootstrap",
    )
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("system:cli", "api_key.created"),
        ("system:cli", "api_key.revoked"),
    ]


async def test_list_shows_every_key_without_secrets(
    client: httpx.AsyncClient, settings: Settings, admin_key: str
) -> None:
    """`keys list` is a table of ids, names, scopes and state; no secret appears in it."""
    spare = await create(settings, "--scope", "backend:read", "--name", "spare key")
    code, out, err = await consentry(settings, "keys", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "SCOPES", "CREATED", "BY", "STATE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {admin_key.split("_")[1], spare.split("_")[1]}
    assert "spare key" in rows[spare.split("_")[1]] and "active" in rows[spare.split("_")[1]]
    for full in (admin_key, spare):
        assert full.split("_", 2)[2] not in out


async def test_a_name_with_a_line_break_stays_on_its_row(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """A key name holding a line break is listed quoted, one row per key."""
    await create(settings, "--scope", "backend:read", "--name", "two\nlines")
    code, out, err = await consentry(settings, "keys", "list")
    assert code == 0, err
    assert len(out.splitlines()) == 3 and "'two\\nlines'" in out


async def test_list_on_an_empty_store_says_so(settings: Settings) -> None:
    """With no key at all, `keys list` prints nothing on standard output and says so on stderr."""
    assert (await consentry(settings, "migrate", "--create"))[0] == 0  # data, but no key yet
    code, out, err = await consentry(settings, "keys", "list")
    assert (code, out, err.strip()) == (0, "", "no keys")


async def test_revoking_the_last_admin_key_needs_force(
    client: httpx.AsyncClient, settings: Settings, core: Core, admin_key: str
) -> None:
    """The CLI refuses to revoke the last admin key unless told --force, and then it goes."""
    key_id = admin_key.split("_")[1]
    code, _, err = await consentry(settings, "keys", "revoke", key_id)
    assert code == 1 and "last active admin key" in err and "--force" in err
    assert (await client.get("/v1/api-keys")).status_code == 200
    code, _, err = await consentry(settings, "keys", "revoke", key_id, "--force")
    assert code == 0, err
    core.caches.clear()  # the CLI is another process: it reaches this one within CACHE_SECONDS
    assert (await client.get("/v1/api-keys")).status_code == 401


async def test_locked_out_admins_get_back_in_with_the_cli(
    client: httpx.AsyncClient, settings: Settings, admin_key: str
) -> None:
    """After every admin key is gone, a key made by the CLI manages keys again."""
    await consentry(settings, "keys", "revoke", admin_key.split("_")[1], "--force")
    assert (await client.get("/v1/api-keys")).status_code == 401
    key = await create(settings, "--scope", "admin", "--name", "recovery")
    r = await client.post(
        "/v1/api-keys", json={"name": "n", "scopes": ["admin"]}, headers=bearer(key)
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("revoke", "0123456789abcdef"), "no API key '0123456789abcdef'"),
        (("create", "--scope", "root", "--name", "x"), "'root' is not one of 'admin'"),
        (("create", "--scope", "admin"), "Missing option '--name'"),
    ],
)
async def test_mistakes_are_named(
    client: httpx.AsyncClient, settings: Settings, args: tuple[str, ...], message: str
) -> None:
    """An unknown key, an unknown scope or a missing name fails with a message that says so."""
    code, out, err = await consentry(settings, "keys", *args)
    assert code in (1, 2) and out == "" and message in err, err
