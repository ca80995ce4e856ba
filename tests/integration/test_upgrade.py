"""Upgrading: a database made by an earlier release comes up to date at start, its rows intact and
its audit chain still verifying; the checked-in migrations make the schema `tables.py` declares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consentry.audit.chain import GENESIS_HASH, AuditDraft, chain
from consentry.audit_log import tree as audit_tree
from consentry.audit_log.verify import verify_database
from consentry.boot import close_core, open_core
from consentry.core.runtime import Core
from consentry.crypto.canonical import canonical_json
from consentry.settings import Settings
from consentry.storage.database import Database, Transaction
from consentry.storage.migrations import migrations, statements
from consentry.storage.schema import migrate
from consentry.storage.tables import CORE_TABLES
from consentry.storage.writer import WriteTx

PREVIOUS_RELEASE = Path(__file__).parent / "previous_release"
SUBJECT = uuid.UUID("00000000-0000-4000-8000-000000000001")
AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
OLD_ENTRIES = chain(
    [
        AuditDraft("key:admin", "subject.created", str(SUBJECT), {"region": "EU"}),
        AuditDraft("key:admin", "consent.recorded", str(SUBJECT), {"purpose": "analytics"}),
        AuditDraft("system", "policy.loaded", "policy", {"version": "v1"}),
    ],
    head_seq=0,
    head_hash=GENESIS_HASH,
    at=AT,
    policy_version="v1",
)


async def make_previous_release(url: str) -> None:
    """The schema and a few rows, as the release before `audit_log.purposes` left them."""
    db = Database(url)
    await db.start()
    try:
        async with db.transaction() as tx:
            engine = "postgres" if tx.postgres else "sqlite"
            for ddl in statements((PREVIOUS_RELEASE / f"{engine}.sql").read_text()):
                await tx.execute(ddl)
            await _old_rows(tx)
    finally:
        await db.close()


async def _old_rows(tx: Transaction) -> None:
    await tx.execute(
        "INSERT INTO subjects (id, external_id, region, created_at, updated_at)"
        " VALUES (?, 'c-old', 'EU', ?, ?)",
        SUBJECT,
        AT,
        AT,
    )
    await tx.execute(
        "INSERT INTO consent_records (id, subject_id, purpose, decision, legal_basis,"
        " policy_version, source, actor, recorded_at) VALUES (?, ?, 'analytics', 'granted',"
        " 'consent', 'v1', 'api', 'key:admin', ?)",
        uuid.uuid4(),
        SUBJECT,
        AT,
    )
    await tx.execute(
        "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at)"
        " VALUES ('old-answer', ?, 201, ?, ?)",
        "f" * 64,
        b'{"records":[]}',
        AT,
    )
    await tx.executemany(
        "INSERT INTO audit_log (seq, at, actor, action, target, details, policy_version,"
        " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.seq,
                e.at,
                e.actor,
                e.action,
                e.target,
                canonical_json(e.details).decode(),
                e.policy_version,
                e.prev_hash,
                e.hash,
            )
            for e in OLD_ENTRIES
        ],
    )
    last = OLD_ENTRIES[-1]
    await tx.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)", last.seq, last.hash)
    await tx.execute("INSERT INTO consentry_meta (name, value) VALUES ('schema_version', '1')")


async def test_a_database_of_the_previous_release_upgrades_and_works(settings: Settings) -> None:
    """Its rows are kept, the new columns are there, a second migrate changes nothing, and the
    audit chain (old entries and new) verifies."""
    await make_previous_release(settings.database_url)
    core = await open_core(settings)  # migrates
    try:
        assert await core.db.fetch("SELECT external_id FROM subjects") == [{"external_id": "c-old"}]
        assert len(await core.db.fetch("SELECT id FROM consent_records")) == 1
        answers = await core.db.fetch("SELECT key, subject_id FROM idempotency_keys")
        assert answers == [{"key": "old-answer", "subject_id": None}]
        old = await core.db.fetch("SELECT seq, hash, purposes FROM audit_log WHERE seq <= 3")
        assert [(r["seq"], r["hash"], r["purposes"]) for r in old] == [
            (e.seq, e.hash, "") for e in OLD_ENTRIES
        ]
        before = await _schema_and_meta(core)
        await migrate(core.db)
        assert await _schema_and_meta(core) == before

        async def job(tx: WriteTx) -> None:
            tx.audit("key:admin", "subject.updated", str(SUBJECT), purpose="analytics")

        await core.writer.submit(job)
        await core.checkpointer.checkpoint()
        head = await core.db.fetchrow("SELECT seq FROM audit_head WHERE id = 1")
        assert head is not None and int(head["seq"]) > 3
        report = await verify_database(
            core.db,
            settings.database_url,
            await audit_tree.all_checkpoints(core.db),
            await audit_tree.key_ring(core.db),
            head_seq=int(head["seq"]),
        )
        assert report.status == "verified", report.summary()
        assert report.entries == int(head["seq"])
    finally:
        await close_core(core)


async def _schema_and_meta(core: Core) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    meta = await core.db.fetch("SELECT name, value FROM consentry_meta ORDER BY name")
    assert {r["name"] for r in meta} >= {f"migration {m.name}" for m in migrations()}
    return await columns(core.db), meta


async def test_the_migrations_make_the_schema_the_tables_declare(core: Core) -> None:
    """A fresh database has every column of every core table, and no other: a change to
    `storage/tables.py` without a migration (or the reverse) fails here."""
    found = await columns(core.db)
    declared = {
        t._meta.tablename: sorted(c._meta.db_column_name for c in t._meta.columns)
        for t in CORE_TABLES
    }
    assert {name: found.get(name) for name in declared} == declared


async def columns(db: Database) -> dict[str, list[str]]:
    """Every table of the database and its columns, sorted."""
    rows = await db.fetch(
        "SELECT table_name AS t, column_name AS c FROM information_schema.columns"
        " WHERE table_schema = current_schema()"
        if db.is_postgres
        else "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p"
        " WHERE m.type = 'table'"
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["t"], []).append(row["c"])
    return {t: sorted(c) for t, c in found.items()}


def test_statements_split_at_line_ends_and_skip_comments() -> None:
    text = "-- a comment; not a statement\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nDROP TABLE b;\n"
    assert statements(text) == ["CREATE TABLE a (x TEXT DEFAULT ';')", "DROP TABLE b"]


def test_a_migration_has_its_sql_for_both_engines_or_none() -> None:
    """So neither engine skips a step."""
    here = Path(migrations.__code__.co_filename).parent
    for migration in migrations():
        engines = {p.name.split(".")[1] for p in here.glob(f"m{migration.name}.*.sql")}
        assert engines in (set(), {"sqlite", "postgres"}), migration.name
