"""Creating the core schema on either engine; idempotent, so every start may run it.

New tables are created as they appear, and replaced ones (`tables.DROPPED_TABLES`) dropped; a
column added to a shipped table is listed in `tables.ADDED_COLUMNS` and added here when missing."""

from __future__ import annotations

from piccolo.table import Table, sort_table_classes

from consentry.storage.database import Database, Transaction
from consentry.storage.tables import ADDED_COLUMNS, CORE_TABLES, DROPPED_TABLES, EXTRA_INDEXES

SCHEMA_VERSION = "2"


async def migrate(db: Database, extra_tables: tuple[type[Table], ...] = ()) -> None:
    tables = CORE_TABLES + extra_tables
    db.bind(tables)
    # Our transaction, not piccolo's: SQLite's BEGIN IMMEDIATE waits for another process's write
    # (piccolo's deferred one read first and was refused the write at once: "database is
    # locked"); PostgreSQL instances starting together take turns on an advisory lock.
    async with db.transaction() as tx:
        if tx.postgres:
            await tx.execute("SELECT pg_advisory_xact_lock(hashtext('consentry.migrate'))")
        for made in sort_table_classes(list(tables)):
            for ddl in made.create_table(if_not_exists=True).ddl:
                await tx.execute(ddl)
        for table in DROPPED_TABLES:
            await tx.execute(f"DROP TABLE IF EXISTS {table}")
        for table, column, sql_type in ADDED_COLUMNS:
            if column not in await _columns(tx, table):
                await tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
        for ddl in EXTRA_INDEXES:
            await tx.execute(ddl)
        await tx.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ?) ON CONFLICT (id) DO NOTHING",
            "0" * 64,
        )
        await tx.execute(
            "INSERT INTO consentry_meta (name, value) VALUES ('schema_version', ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            SCHEMA_VERSION,
        )
        scrubbed = await _scrub_secret_answers(tx)
    if scrubbed and not db.is_postgres:
        await db.truncate_wal()  # the log still holds the pages as they were: empty it


# How an older version stored an answer that held a secret (a new API key, a customer token).
_SECRET_ANSWERS = (b'{"key":"ck_', b'{"token":"')


async def _scrub_secret_answers(tx: Transaction) -> bool:
    """Once: delete stored answers an older version kept with a secret in clear (SQLite
    overwrites their bytes). True if this run did it."""
    done = await tx.fetchrow("SELECT value FROM consentry_meta WHERE name = 'idempotency_scrubbed'")
    if done is not None:
        return False
    if not tx.postgres:
        await tx.execute("PRAGMA secure_delete = ON")
    starts = "substring(body from 1 for ?) = ?" if tx.postgres else "substr(body, 1, ?) = ?"
    for prefix in _SECRET_ANSWERS:
        await tx.execute(f"DELETE FROM idempotency_keys WHERE {starts}", len(prefix), prefix)
    if not tx.postgres:
        await tx.execute("PRAGMA secure_delete = OFF")
    await tx.execute(
        "INSERT INTO consentry_meta (name, value) VALUES ('idempotency_scrubbed', 'yes')"
    )
    return True


async def _columns(tx: Transaction, table: str) -> set[str]:
    if tx.postgres:
        rows = await tx.fetch(
            "SELECT column_name AS name FROM information_schema.columns"
            " WHERE table_name = ? AND table_schema = current_schema()",
            table,
        )
    else:
        rows = await tx.fetch(f"PRAGMA table_info({table})")
    return {str(r["name"]) for r in rows}
