"""Bringing the schema up to date on either engine; every start runs it (service and CLI).

The core schema is the checked-in migrations (`storage.migrations`), each applied once and
recorded in `consentry_meta`; plugins' tables are created when missing."""

from __future__ import annotations

from datetime import UTC, datetime

from piccolo.table import Table, sort_table_classes

from consentry.storage.database import Database, Transaction
from consentry.storage.migrations import migrations
from consentry.storage.tables import CORE_TABLES

# Where applied migrations are recorded: the one table that exists before any migration runs.
_RECORD_TABLE = (
    "CREATE TABLE IF NOT EXISTS consentry_meta"
    " (name VARCHAR(100) PRIMARY KEY NOT NULL DEFAULT '', value TEXT NOT NULL DEFAULT '')"
)
_RECORD_PREFIX = "migration "


async def migrate(db: Database, extra_tables: tuple[type[Table], ...] = ()) -> None:
    db.bind(CORE_TABLES + extra_tables)
    # Our transaction, not piccolo's: SQLite's BEGIN IMMEDIATE waits for another process's write
    # (piccolo's deferred one read first and was refused the write at once: "database is
    # locked"); PostgreSQL instances starting together take turns on an advisory lock.
    async with db.transaction() as tx:
        if tx.postgres:
            await tx.execute("SELECT pg_advisory_xact_lock(hashtext('consentry.migrate'))")
        ran = await _apply_migrations(tx)
        for made in sort_table_classes(list(extra_tables)):
            for ddl in made.create_table(if_not_exists=True).ddl:
                await tx.execute(ddl)
    if ran and not db.is_postgres:
        # a migration may have deleted rows (the baseline's scrub of old secrets): the log still
        # holds the pages as they were, so empty it
        await db.truncate_wal()


async def _apply_migrations(tx: Transaction) -> list[str]:
    """Apply the migrations not yet recorded, oldest first; the names of those applied."""
    await tx.execute(_RECORD_TABLE)
    rows = await tx.fetch("SELECT name FROM consentry_meta WHERE name LIKE ?", _RECORD_PREFIX + "%")
    done = {str(r["name"]).removeprefix(_RECORD_PREFIX) for r in rows}
    ran = []
    for migration in migrations():
        if migration.name in done:
            continue
        await migration.forwards(tx)
        await tx.execute(
            "INSERT INTO consentry_meta (name, value) VALUES (?, ?)",
            _RECORD_PREFIX + migration.name,
            datetime.now(UTC).isoformat(),
        )
        ran.append(migration.name)
    return ran
