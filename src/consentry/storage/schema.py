"""Creating the core schema on either engine; idempotent, so every start may run it."""

from __future__ import annotations

from piccolo.table import Table, create_db_tables

from consentry.storage.database import Database
from consentry.storage.tables import CORE_TABLES, EXTRA_INDEXES

SCHEMA_VERSION = "1"


async def migrate(db: Database, extra_tables: tuple[type[Table], ...] = ()) -> None:
    tables = CORE_TABLES + extra_tables
    db.bind(tables)
    await create_db_tables(*tables, if_not_exists=True)
    async with db.transaction() as tx:
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
