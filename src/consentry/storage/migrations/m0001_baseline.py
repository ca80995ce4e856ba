"""0001 baseline: the core schema as of issue 11, and the upgrade of a database made before
migrations were recorded (each step is idempotent, so it adopts any earlier release's database).

The tables and indexes are piccolo's DDL, frozen in `m0001_baseline.<engine>.sql`."""

from __future__ import annotations

from consentry.storage.database import Transaction
from consentry.storage.migrations import run_sql_file

# Tables a later release replaced (`verifications` held codes by customer, which told by its work
# who is one; `verification_codes` replaced it).
_DROPPED_TABLES = ("verifications",)

# Columns added after a table first shipped: an older release's table lacks them.
_ADDED_COLUMNS = (
    ("audit_log", "purposes", "VARCHAR(500) NOT NULL DEFAULT ''"),
    ("idempotency_keys", "subject_id", "UUID"),
)

# How an older release stored an answer that held a secret (a new API key, a customer token).
_SECRET_ANSWERS = (b'{"key":"ck_', b'{"token":"')


async def forwards(tx: Transaction) -> None:
    for table in _DROPPED_TABLES:
        await tx.execute(f"DROP TABLE IF EXISTS {table}")
    for table, column, sql_type in _ADDED_COLUMNS:
        present = await _columns(tx, table)
        if present and column not in present:  # the table is an older release's
            await tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
    await run_sql_file(tx, __name__)  # the missing tables, then the indexes (on new columns too)
    await tx.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ?) ON CONFLICT (id) DO NOTHING",
        "0" * 64,
    )
    await _scrub_secret_answers(tx)


async def _scrub_secret_answers(tx: Transaction) -> None:
    """Once: delete stored answers an older release kept with a secret in clear (SQLite
    overwrites their bytes; the runner then empties the write-ahead log)."""
    done = await tx.fetchrow("SELECT value FROM consentry_meta WHERE name = 'idempotency_scrubbed'")
    if done is not None:
        return
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
