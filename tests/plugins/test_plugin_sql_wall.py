"""A plugin's SQL reaches its own tables and nothing else, by the engine's own checks (SQLite's
authorizer, PostgreSQL's privileges of the plugin's role), not by reading the statement: so
names built at run time, CTEs, subqueries, views, triggers and ATTACH are refused alike, with
`ForeignTable`. Each `execute` is audited in the chain, which still verifies."""

from __future__ import annotations

import base64
import json
import sqlite3
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from piccolo.columns import UUID, Text
from piccolo.table import Table

from consentry.audit.verify import verify_export
from consentry.crypto.signing import KeyRing
from consentry.host.context import CoreContext, ForeignTable
from consentry.plugins import hookimpl
from consentry.storage.plugin_wall import password_of, role_of, scram_verifier
from consentry.testing import Service, running_service

# a test of one engine's own mechanism runs on that engine only (not skipped on the other)
ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ON_POSTGRES = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
CORE_TABLES = ("subjects", "audit_log", "consent_records", "consent_state", "api_keys")


class WallNote(Table, tablename="wall_notes"):
    id = UUID(primary_key=True)
    subject_id = UUID(index=True)
    text = Text()


class OtherNote(Table, tablename="other_notes"):
    id = UUID(primary_key=True)
    text = Text()


def _plugin(name: str, table: type[Table]) -> tuple[str, types.ModuleType]:
    module = types.ModuleType(f"test_plugin_{name}")

    def register_tables(register: Any) -> None:
        register(table)

    module.register_tables = hookimpl(register_tables)  # type: ignore[attr-defined]
    return name, module


@pytest.fixture
async def service(database_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    """Two plugins with a table each, and one customer, on both engines."""
    plugins = (_plugin("wall", WallNote), _plugin("other", OtherNote))
    async with running_service(*plugins, database_url=database_url, tmp_path=tmp_path) as s:
        await s.customer("c-1", consents={"analytics": "granted"})
        yield s


async def _core_rows(service: Service) -> dict[str, list[dict[str, Any]]]:
    return {t: await service.core.db.fetch(f"SELECT * FROM {t} ORDER BY 1") for t in CORE_TABLES}


async def _insert(context: CoreContext, text: str = "hello") -> None:
    await context.execute(
        "INSERT INTO wall_notes (id, subject_id, text) VALUES (?, ?, ?)", uuid4(), uuid4(), text
    )


async def test_its_own_table_works_both_ways(service: Service) -> None:
    context = service.context("wall")
    await _insert(context, "first")
    await context.execute("UPDATE wall_notes SET text = ? WHERE text = ?", "second", "first")
    rows = await context.fetch("SELECT text FROM wall_notes")
    assert rows == [{"text": "second"}]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM subjects",
        "UPDATE audit_log SET actor = 'plugin:wall'",
        "INSERT INTO api_keys (id) VALUES (NULL)",
        "DELETE FROM consent_state WHERE subject_id IN (SELECT id FROM subjects)",
        # a CTE reading core data into the plugin's own table
        "WITH s AS (SELECT id FROM subjects) INSERT INTO wall_notes (id, subject_id, text)"
        " SELECT id, id, 'stolen' FROM s",
        # a subquery doing the same
        "UPDATE wall_notes SET text = (SELECT MAX(actor) FROM audit_log)",
        "DELETE FROM other_notes",
        "CREATE VIEW wall_subjects AS SELECT * FROM subjects",
        "DROP TABLE subjects",
    ],
)
async def test_execute_on_what_is_not_its_own_is_refused(service: Service, sql: str) -> None:
    """Core tables, another plugin's table, and DDL are refused; nothing changes."""
    await _insert(service.context("wall"))
    before = await _core_rows(service)
    with pytest.raises(ForeignTable, match=r"customer data comes through context\.gate"):
        await service.context("wall").execute(sql)
    assert await _core_rows(service) == before
    rows = await service.context("wall").fetch("SELECT text FROM wall_notes")
    assert rows == [{"text": "hello"}]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM subjects",
        "SELECT COUNT(*) AS n FROM audit_log",
        "SELECT text FROM wall_notes WHERE subject_id IN (SELECT id FROM subjects)",
        "WITH a AS (SELECT hash FROM audit_head) SELECT * FROM a",
        "SELECT * FROM other_notes",
    ],
)
async def test_fetch_of_what_is_not_its_own_is_refused(service: Service, sql: str) -> None:
    with pytest.raises(ForeignTable):
        await service.context("wall").fetch(sql)


async def test_fetch_only_reads(service: Service) -> None:
    """`fetch` may not change even the plugin's own rows: writes go through `execute`."""
    await _insert(service.context("wall"))
    with pytest.raises(ForeignTable):
        await service.context("wall").fetch("DELETE FROM wall_notes")
    assert len(await service.context("wall").fetch("SELECT id FROM wall_notes")) == 1


async def test_a_trigger_it_tries_to_create_is_refused(service: Service) -> None:
    if service.core.db.is_postgres:
        sql = (
            "CREATE TRIGGER wall_spy BEFORE UPDATE ON wall_notes FOR EACH ROW"
            " EXECUTE FUNCTION suppress_redundant_updates_trigger()"
        )
    else:
        sql = "CREATE TRIGGER wall_spy AFTER INSERT ON wall_notes BEGIN DELETE FROM subjects; END"
    with pytest.raises(ForeignTable):
        await service.context("wall").execute(sql)


async def test_a_table_name_built_at_run_time_is_refused(service: Service) -> None:
    """PostgreSQL: `EXECUTE 'sub' || 'jects'` in a DO block, and `RESET ROLE` before it, run
    with the plugin's privileges; so does a query run by a function (query_to_xml).
    SQLite: a name read from the schema cannot be run (no dynamic SQL), and the schema itself
    is not the plugin's to read."""
    context = service.context("wall")
    before = await _core_rows(service)
    if service.core.db.is_postgres:
        statements = [
            "DO $$ BEGIN EXECUTE 'DELETE FROM sub' || 'jects'; END $$",
            "DO $$ BEGIN RESET ROLE; EXECUTE 'DELETE FROM sub' || 'jects'; END $$",
            "DO $$ BEGIN SET ROLE postgres; DELETE FROM subjects; END $$",
        ]
        for sql in statements:
            with pytest.raises(ForeignTable):
                await context.execute(sql)
        with pytest.raises(ForeignTable):
            await context.fetch(
                "SELECT query_to_xml('SELECT * FROM sub' || 'jects', true, true, '')"
            )
    else:
        with pytest.raises(ForeignTable):
            await context.fetch("SELECT name FROM sqlite_master")
    assert await _core_rows(service) == before


@ON_SQLITE
async def test_sqlite_attach_pragma_and_extensions_are_refused(
    service: Service, tmp_path: Path
) -> None:
    context = service.context("wall")
    for sql in (
        f"ATTACH DATABASE '{tmp_path / 'elsewhere.sqlite'}' AS elsewhere",
        "PRAGMA foreign_keys = 0",
        "SELECT load_extension('anything')",
        "SAVEPOINT breakout",
        "COMMIT",
    ):
        with pytest.raises(ForeignTable):
            await context.execute(sql)
    assert not (tmp_path / "elsewhere.sqlite").exists()
    foreign_keys = await service.core.db.fetch("PRAGMA foreign_keys")
    assert list(foreign_keys[0].values()) == [1]


async def _writes(service: Service) -> list[dict[str, Any]]:
    return await service.core.db.fetch(
        "SELECT actor, action, target, details FROM audit_log WHERE action = 'plugin.write'"
        " ORDER BY seq"
    )


async def test_execute_is_audited_and_the_chain_still_verifies(service: Service) -> None:
    """One `plugin.write` entry per execute: the tables it names and the rows it changed, no
    values; a refused statement leaves none."""
    context = service.context("wall")
    await _insert(context, "secret text")
    await _insert(context, "more secret text")
    await context.execute("DELETE FROM wall_notes WHERE text LIKE ?", "%secret%")
    with pytest.raises(ForeignTable):
        await context.execute("DELETE FROM subjects")
    writes = await _writes(service)
    assert [(w["actor"], w["action"], w["target"]) for w in writes] == [
        ("plugin:wall", "plugin.write", "plugin:wall")
    ] * 3
    details = [json.loads(w["details"]) for w in writes]
    assert details == [
        {"tables": ["wall_notes"], "rows": 1},
        {"tables": ["wall_notes"], "rows": 1},
        {"tables": ["wall_notes"], "rows": 2},
    ]
    assert "secret" not in json.dumps(details)
    jwks = await service.client.get("/.well-known/jwks.json", headers={"Authorization": ""})
    export = await service.client.get("/v1/audit/export")
    assert export.status_code == 200, export.text
    report = verify_export(export.content.splitlines(), KeyRing.load(jwks.content))
    assert report.status == "verified", report.summary()
    assert report.entries == len(export.content.splitlines()) - 1


async def test_one_statement_at_a_time(service: Service) -> None:
    """A string of statements (`...; COMMIT; ...` would end the transaction before its audit
    entry) is refused whole, on both engines."""
    context = service.context("wall")
    await _insert(context)
    with pytest.raises((sqlite3.ProgrammingError, asyncpg.PostgresSyntaxError)):
        await context.execute("DELETE FROM wall_notes; COMMIT; DELETE FROM wall_notes")
    assert len(await context.fetch("SELECT id FROM wall_notes")) == 1
    assert len(await _writes(service)) == 1  # the insert's


@ON_POSTGRES
async def test_postgres_statements_run_in_a_session_of_the_plugins_role(
    service: Service,
) -> None:
    """Logged in as `consentry_plugin_wall`: no role to go back to. Its stored password is a
    SCRAM verifier, which the service computes itself (the password is never sent)."""
    rows = await service.context("wall").fetch("SELECT current_user AS c, session_user AS s")
    assert rows == [{"c": "consentry_plugin_wall", "s": "consentry_plugin_wall"}]
    stored = await service.core.db.fetchrow(
        "SELECT rolpassword FROM pg_authid WHERE rolname = 'consentry_plugin_wall'"
    )
    assert stored is not None
    password = password_of(service.core.secrets.index_key, "consentry_plugin_wall")
    assert stored["rolpassword"] == _recomputed(stored["rolpassword"], password)


def _recomputed(verifier: str, password: str) -> str:
    """`scram_verifier` for `password` with the salt and iterations of `verifier`."""
    iterations, salt = verifier.split("$")[1].split(":")
    return scram_verifier(password, base64.b64decode(salt), int(iterations))


@ON_POSTGRES
async def test_scram_verifier_matches_postgres_own(database_url: str) -> None:
    """PostgreSQL hashes a password given in clear; ours, with its salt, is the same."""
    conn = await asyncpg.connect(database_url.split("?")[0])
    role = f"sqlwall_probe_{uuid4().hex[:8]}"
    try:
        await conn.execute(f"CREATE ROLE {role} NOLOGIN PASSWORD 'pencil'")
        stored = await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
    finally:
        await conn.execute(f"DROP ROLE IF EXISTS {role}")
        await conn.close()
    assert stored.startswith("SCRAM-SHA-256$")
    assert _recomputed(stored, "pencil") == stored
    assert _recomputed(stored, "pencils") != stored


def test_a_plugin_name_that_cannot_name_a_role_is_refused() -> None:
    assert role_of("chat") == "consentry_plugin_chat"
    for name in ('chat"; DROP ROLE postgres; --', "Chat", "", "x" * 60):
        with pytest.raises(ValueError, match="cannot name a database role"):
            role_of(name)
