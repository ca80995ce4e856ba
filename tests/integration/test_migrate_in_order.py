"""The migration runner: each migration once, oldest first, recorded; all or nothing."""

from __future__ import annotations

import pytest

from consentry.core.runtime import Core
from consentry.storage import schema
from consentry.storage.database import Transaction
from consentry.storage.migrations import Migration, migrations


def test_the_checked_in_migrations_start_with_the_baseline() -> None:
    names = [m.name for m in migrations()]
    assert names[0] == "0001_baseline" and names == sorted(names)


async def test_new_migrations_run_once_in_order_and_a_failure_keeps_nothing(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    def step(name: str, sql: str) -> Migration:
        async def forwards(tx: Transaction) -> None:
            ran.append(name)
            await tx.execute(sql)

        return Migration(name, forwards)

    shipped = migrations()
    later = (
        step("0900_notes", "CREATE TABLE later_notes (id INTEGER PRIMARY KEY)"),
        step("0901_broken", "ALTER TABLE no_such_table ADD COLUMN x INTEGER"),
    )
    monkeypatch.setattr(schema, "migrations", lambda: shipped + later)
    with pytest.raises(Exception, match="no_such_table"):
        await schema.migrate(core.db)
    assert ran == ["0900_notes", "0901_broken"]  # the baseline was applied at start already
    assert await _recorded(core) == [m.name for m in shipped]
    with pytest.raises(Exception, match="later_notes"):  # rolled back with the failure
        await core.db.fetch("SELECT id FROM later_notes")

    fixed = (later[0], step("0901_broken", "CREATE TABLE later_more (id INTEGER PRIMARY KEY)"))
    monkeypatch.setattr(schema, "migrations", lambda: shipped + fixed)
    ran.clear()
    await schema.migrate(core.db)
    await schema.migrate(core.db)
    assert ran == ["0900_notes", "0901_broken"]
    assert await _recorded(core) == [m.name for m in shipped + fixed]
    assert await core.db.fetch("SELECT id FROM later_notes") == []


async def _recorded(core: Core) -> list[str]:
    rows = await core.db.fetch(
        "SELECT name FROM consentry_meta WHERE name LIKE 'migration %' ORDER BY name"
    )
    return [str(r["name"]).removeprefix("migration ") for r in rows]
