"""A full disk: writes and audited reads answer 503 with Retry-After, write nothing half, and
work again by themselves once space returns.

SQLite: `PRAGMA max_page_count`, lowered on the writer's live connection to the file's current
size, makes the database "full" exactly like a full file system (SQLITE_FULL, "database or disk
is full") without needing to mount anything. PostgreSQL: filling a tablespace is impractical, so
a deferred constraint trigger on `audit_log` makes the server itself raise SQLSTATE 53100
(disk_full) at COMMIT, the moment a real full disk most often shows; asyncpg turns it into its
`DiskFullError` as it would for the real thing. Both make every test below run on both engines.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from tests.integration.test_writer import (
    PROBE_DDL,
    Blocker,
    assert_sound_chain,
    audit_entries,
    count,
    writing,
)

from consentry.audit.chain import verify
from consentry.boot import close_core, open_core
from consentry.core.runtime import Core
from consentry.customers import records as customers
from consentry.settings import Settings
from consentry.storage.database import StorageFull, is_storage_full
from consentry.storage.writer import WriteTx
from consentry.testing import TEST_ACTOR

PG_FULL = (
    "CREATE OR REPLACE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'"
    " USING ERRCODE = 'disk_full'; END $$",
    "CREATE CONSTRAINT TRIGGER test_disk_full AFTER INSERT ON audit_log"
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_disk_full()",
)


def writer_connection(core: Core) -> sqlite3.Connection:
    """The single writer's own SQLite connection (opened by its first transaction)."""
    conn = core.db._writer
    assert conn is not None, "the writer has not opened its connection yet"
    return conn


async def fill(core: Core) -> None:
    """The data store is full from now on."""
    if core.db.is_postgres:
        async with core.db.transaction() as tx:
            for sql in PG_FULL:
                await tx.execute(sql)
        return
    async with core.db.transaction():
        pass  # the writer's connection exists from here on
    conn = writer_connection(core)
    pages = conn.execute("PRAGMA page_count").fetchone()["page_count"]
    conn.execute(f"PRAGMA max_page_count = {pages}")


async def free(core: Core) -> None:
    """Space returns."""
    if core.db.is_postgres:
        async with core.db.transaction() as tx:
            await tx.execute("DROP TRIGGER IF EXISTS test_disk_full ON audit_log")
        return
    writer_connection(core).execute("PRAGMA max_page_count = 1073741823")


def big(i: int) -> Callable[[WriteTx], Awaitable[int]]:
    """A job whose row needs new pages (20 kB, far more than one page)."""
    return writing(i, tag="x" * 20_000)


@pytest.fixture
async def probe(core: Core) -> AsyncIterator[Core]:
    """The running core with a scratch table, no checkpointer, and the writer's connection open."""
    await core.checkpointer.stop()
    async with core.db.transaction() as tx:
        await tx.execute(PROBE_DDL)
    yield core


async def test_a_full_disk_fails_every_job_of_the_batch(probe: Core) -> None:
    """When one job of a batch finds the disk full, every job of that batch fails with
    StorageFull and none of their rows or audit entries stays."""
    core = probe
    await core.writer.submit(writing(0))
    await fill(core)
    async with Blocker(core):
        tasks = [asyncio.create_task(core.writer.submit(j)) for j in (writing(1), big(2))]
        for _ in range(5):
            await asyncio.sleep(0)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r) for r in results] == [StorageFull, StorageFull]
    assert await count(core.db, "probe") == 1
    await assert_sound_chain(core.db, 1)


async def test_writes_work_again_when_space_returns(probe: Core) -> None:
    """After a full disk refused a write, freeing space lets the next write through, and the
    audit chain continues with no gap from what was committed."""
    core = probe
    await core.writer.submit(writing(0))
    await fill(core)
    with pytest.raises(StorageFull):
        await core.writer.submit(big(1))
    await free(core)
    assert await core.writer.submit(big(2)) == 2
    entries = await assert_sound_chain(core.db, 2)
    assert [e.details["i"] for e in entries] == [0, 2]
    assert core.writer.head_seq == 2


async def test_a_failed_commit_does_not_advance_the_writers_head(probe: Core) -> None:
    """When the audit entries or the COMMIT find no room, the writer's head stays at what was
    committed."""
    core = probe
    await core.writer.submit(writing(0))
    await fill(core)

    async def audit_only(tx: WriteTx) -> None:
        tx.audit("key:test", "probe.read", "probe:big", note="y" * 20_000)

    with pytest.raises(StorageFull):
        await core.writer.submit(audit_only)
    assert core.writer.head_seq == 1
    await assert_sound_chain(core.db, 1)


async def until_refused(send: Callable[[int], Awaitable[httpx.Response]]) -> list[int]:
    """Send requests until one is not answered 2xx (at most 200): their status codes."""
    statuses: list[int] = []
    for i in range(200):
        r = await send(i)
        statuses.append(r.status_code)
        if r.status_code >= 300:
            assert r.headers["content-type"].startswith("application/problem+json"), r.text
            assert r.headers.get("retry-after", "").isdigit(), r.headers
            assert "storage" in r.json()["detail"], r.text
            break
    return statuses


async def test_a_write_on_a_full_disk_answers_503_with_retry_after(
    client: httpx.AsyncClient, core: Core
) -> None:
    """Customer writes on a full disk answer 503 problem+json with Retry-After, and each
    acknowledged write has exactly its audit entry."""
    await client.put("/v1/customers/full-0", json={"region": "EU"})
    await fill(core)
    before = await count(core.db, "audit_log")

    async def put(i: int) -> httpx.Response:
        return await client.put(f"/v1/customers/full-{i + 1}", json={"region": "EU"})

    statuses = await until_refused(put)
    assert statuses[-1] == 503 and set(statuses[:-1]) <= {201}
    assert await count(core.db, "subjects") == len(statuses)  # full-0 and the acknowledged
    assert await count(core.db, "audit_log") - before == len(statuses) - 1
    await free(core)
    r = await client.put("/v1/customers/full-after", json={"region": "EU"})
    assert r.status_code == 201, r.text
    assert verify(await audit_entries(core.db)) is None


async def test_an_audited_read_on_a_full_disk_answers_503(
    client: httpx.AsyncClient, core: Core
) -> None:
    """A staff read whose audit entry finds no room answers 503 with Retry-After, not the data."""
    await client.put("/v1/customers/reader-1", json={"region": "EU"})
    await fill(core)

    async def read(i: int) -> httpx.Response:
        return await client.get("/v1/customers/reader-1/consents")

    statuses = await until_refused(read)
    assert statuses[-1] == 503 and set(statuses[:-1]) <= {200}


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.DiskFullError("could not extend file: No space left on device"),
        asyncpg.exceptions.OutOfMemoryError("out of memory"),
        sqlite3.OperationalError("database or disk is full"),
        OSError(28, "No space left on device"),
    ],
    ids=["pg-53100", "pg-53200", "sqlite-full", "enospc"],
)
def test_disk_full_errors_of_both_engines_are_storage_full(error: Exception) -> None:
    """PostgreSQL's SQLSTATE 53100/53200, SQLite's SQLITE_FULL and ENOSPC all mean: no room."""
    assert is_storage_full(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        sqlite3.OperationalError("no such table: x"),
        OSError(13, "Permission denied"),
        ValueError("full"),
    ],
    ids=["pg-unique", "sqlite-other", "eacces", "value"],
)
def test_other_errors_are_not_storage_full(error: Exception) -> None:
    """Other database and file errors are not mistaken for a full disk."""
    assert not is_storage_full(error)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs file system (needs root; without it the max_page_count tests above stand
    in, and this one says so in its skip reason)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.decode().strip()}): the"
            " max_page_count tests cover a full SQLite database instead"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def eat_space(mount: Path, leave: int) -> Path:
    """Fill the file system with a filler file, leaving `leave` bytes free."""
    st = os.statvfs(mount)
    filler = mount / "filler"
    filler.write_bytes(b"\0" * max(st.f_bavail * st.f_frsize - leave, 0))
    return filler


async def test_a_really_full_file_system_refuses_then_recovers(small_disk: Path) -> None:
    """SQLite on a full tmpfs: a customer write fails with StorageFull, nothing half stays, and
    once the filler is deleted the next write succeeds and the chain is whole."""
    core = await open_core(Settings(data_dir=small_disk / "data", plugins=""))
    try:
        filler = eat_space(small_disk, leave=64 * 1024)
        done = 0
        with pytest.raises(StorageFull):
            for i in range(5000):
                cmd = customers.CustomerUpsert(f"t-{i}", "EU", {"email": f"t{i}@example.com"})
                await customers.upsert(core, cmd, TEST_ACTOR)
                done += 1
        filler.unlink()
        await customers.upsert(core, customers.CustomerUpsert("t-after", "EU"), TEST_ACTOR)
        assert await count(core.db, "subjects") == done + 1
        await assert_sound_chain(core.db, done + 1)
        assert core.writer.head_seq == done + 1
    finally:
        await close_core(core)
