"""`migrate` runs at every start, CLI commands included, while a service may be writing to the
same data store: it must wait its turn, never fail with "database is locked"."""

from __future__ import annotations

import asyncio
import sqlite3

from piccolo.columns import Varchar
from piccolo.table import Table

from consentry.core.runtime import Core
from consentry.storage.database import Database
from consentry.storage.schema import migrate


class LateTable(Table, tablename="late_plugin_rows"):
    """A table a second process knows (a plugin enabled there) and the first did not create."""

    name = Varchar(length=20)


async def test_migrate_waits_for_a_write_in_progress_elsewhere(core: Core) -> None:
    """Another connection holds the write lock and commits while `migrate` has a new table to
    create: `migrate` waits for the lock and then creates it (it used to read first in a
    deferred transaction, and SQLite refused the stale snapshot's write at once)."""
    other = Database(core.db.url)
    await other.start()
    try:
        if core.db.is_postgres:
            holder = await _hold_postgres_lock(core)
        else:
            path = core.db.url.removeprefix("sqlite:///")
            holder = await asyncio.to_thread(_hold_sqlite_lock, path)  # the loop keeps running
        migration = asyncio.create_task(migrate(other, (LateTable,)))
        await asyncio.sleep(0.5)
        assert not migration.done(), "migrate went ahead while another process was writing"
        await holder()  # the other writer commits
        await asyncio.wait_for(migration, 20)
        assert await core.db.fetch("SELECT name FROM late_plugin_rows") == []
    finally:
        await other.close()


def _hold_sqlite_lock(path: str):  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE consentry_meta SET value = value WHERE name = 'schema_version'")
    conn.execute("INSERT INTO consentry_meta (name, value) VALUES ('held', 'yes')")

    async def commit() -> None:
        await asyncio.to_thread(conn.execute, "COMMIT")
        conn.close()

    return commit


async def _hold_postgres_lock(core: Core):  # type: ignore[no-untyped-def]
    import asyncpg

    from consentry.storage.database import _split_postgres_url

    dsn, params = _split_postgres_url(core.db.url)
    conn = await asyncpg.connect(dsn, server_settings=params)
    tx = conn.transaction()
    await tx.start()
    await conn.execute("LOCK TABLE consentry_meta IN ACCESS EXCLUSIVE MODE")

    async def commit() -> None:
        await tx.commit()
        await conn.close()

    return commit
