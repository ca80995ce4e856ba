"""The single writer on both engines: group commit, per-job savepoints, audit chaining,
durability settings, idempotency, and two writers sharing one database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from itertools import pairwise
from typing import Any

import pytest

from consentry.audit.chain import AuditEntry, verify
from consentry.boot import close_core, open_core
from consentry.core.runtime import Core
from consentry.settings import Settings
from consentry.storage.database import Database
from consentry.storage.idempotency import (
    IdempotencyScope,
    KeyReused,
    Replayed,
    idempotency_scope,
)
from consentry.storage.writer import WriteTx

PROBE_DDL = "CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, tag TEXT NOT NULL)"


class Boom(Exception):
    """A job's own failure."""


@pytest.fixture
async def probe(core: Core) -> AsyncIterator[Core]:
    """The running core with a scratch table `probe` for jobs to write into, and no checkpointer
    submitting jobs of its own: the writer's counters count the test's jobs only."""
    await core.checkpointer.stop()
    core.writer.jobs = core.writer.batches = 0
    async with core.db.transaction() as tx:
        await tx.execute(PROBE_DDL)
    yield core


async def audit_entries(db: Database) -> list[AuditEntry]:
    """The audit log read back from the database, as chain entries."""
    rows = await db.fetch("SELECT * FROM audit_log ORDER BY seq")
    return [
        AuditEntry(
            seq=int(r["seq"]),
            at=r["at"],
            actor=r["actor"],
            action=r["action"],
            target=r["target"],
            details=json.loads(r["details"]),
            policy_version=r["policy_version"],
            prev_hash=r["prev_hash"],
            hash=r["hash"],
        )
        for r in rows
    ]


async def assert_sound_chain(db: Database, expected: int) -> list[AuditEntry]:
    """seqs 1..expected, each prev_hash the hash before it, verify passes, head = last entry."""
    entries = await audit_entries(db)
    assert [e.seq for e in entries] == list(range(1, expected + 1))
    for before, after in pairwise(entries):
        assert after.prev_hash == before.hash
    assert verify(entries) is None
    head = await db.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1")
    assert head is not None
    if entries:
        assert (int(head["seq"]), head["hash"]) == (entries[-1].seq, entries[-1].hash)
    else:
        assert int(head["seq"]) == 0
    return entries


async def count(db: Database, table: str, where: str = "", *args: Any) -> int:
    row = await db.fetchrow(f"SELECT COUNT(*) AS n FROM {table} {where}", *args)
    assert row is not None
    return int(row["n"])


def writing(i: int, *, fail: bool = False, tag: str = "ok"):  # type: ignore[no-untyped-def]
    """A job that inserts probe row i and one audit draft, then raises Boom(i) if asked."""

    async def job(tx: WriteTx) -> int:
        await tx.execute("INSERT INTO probe (id, tag) VALUES (?, ?)", i, tag)
        tx.audit("key:test", "probe.written", f"probe:{i}", i=i, tag=tag)
        if fail:
            raise Boom(i)
        return i

    return job


class Blocker:
    """Holds the writer inside one job, so that everything submitted meanwhile is one batch."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _job(self, tx: WriteTx) -> None:
        self.entered.set()
        await self.release.wait()

    async def __aenter__(self) -> Blocker:
        self.task = asyncio.create_task(self.core.writer.submit(self._job))
        await asyncio.wait_for(self.entered.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self.task is not None
        await self.task


async def submit_blocked(core: Core, jobs: list[Any]) -> list[Any]:
    """Submit jobs while the writer is held, release it, gather results (exceptions returned)."""
    before = core.writer.batches
    async with Blocker(core):
        tasks = [asyncio.create_task(core.writer.submit(j)) for j in jobs]
        for _ in range(5):
            await asyncio.sleep(0)  # let every task reach the queue
    results = await asyncio.gather(*tasks, return_exceptions=True)
    # the blocker's batch and exactly one more: every job shared one transaction
    assert core.writer.batches - before == 2
    return results


# -- the chain under concurrency -----------------------------------------------------------------


async def test_concurrent_jobs_make_one_contiguous_chain(probe: Core) -> None:
    """200 concurrent jobs: every row and every audit entry lands, seqs 1..200 chain and verify."""
    core = probe
    n = 200
    results = await asyncio.gather(*(core.writer.submit(writing(i)) for i in range(n)))
    assert results == list(range(n))
    assert await count(core.db, "probe") == n
    entries = await assert_sound_chain(core.db, n)
    assert sorted(e.details["i"] for e in entries) == list(range(n))
    assert {e.target for e in entries} == {f"probe:{i}" for i in range(n)}
    assert all(e.action == "probe.written" and e.actor == "key:test" for e in entries)
    assert all(e.policy_version == core.policy.version for e in entries)
    # group commit really grouped: fewer transactions than jobs
    assert core.writer.jobs == n
    assert 2 <= core.writer.batches < core.writer.jobs


async def test_batches_are_capped_at_max_batch(probe: Core) -> None:
    """Queued jobs are committed in batches of at most group_commit_max."""
    core = probe
    cap = core.settings.group_commit_max
    before = core.writer.batches
    async with Blocker(core):
        tasks = [asyncio.create_task(core.writer.submit(writing(i))) for i in range(cap + 10)]
        for _ in range(5):
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert core.writer.batches - before == 3  # the blocker, then cap, then 10
    await assert_sound_chain(core.db, cap + 10)


async def test_chain_continues_across_many_batches(probe: Core) -> None:
    """Sequential small batches keep extending the same chain from the stored head."""
    core = probe
    for i in range(30):
        await core.writer.submit(writing(i))
    assert core.writer.batches >= 30
    await assert_sound_chain(core.db, 30)


async def test_a_job_without_drafts_writes_no_audit_entry(probe: Core) -> None:
    """A job that audits nothing adds no entry and leaves the head where it was."""
    core = probe

    async def silent(tx: WriteTx) -> str:
        await tx.execute("INSERT INTO probe (id, tag) VALUES (?, ?)", 1, "silent")
        return "done"

    assert await core.writer.submit(silent) == "done"
    await assert_sound_chain(core.db, 0)


# -- failing jobs --------------------------------------------------------------------------------


async def test_failing_jobs_roll_back_alone(probe: Core) -> None:
    """In one batch, jobs that raise lose their rows and audit drafts; the others commit."""
    core = probe
    jobs = [writing(i, fail=i % 3 == 1) for i in range(30)]
    results = await submit_blocked(core, jobs)
    for i, result in enumerate(results):
        if i % 3 == 1:
            assert isinstance(result, Boom) and result.args == (i,)  # its own exception
        else:
            assert result == i
    kept = [i for i in range(30) if i % 3 != 1]
    rows = await core.db.fetch("SELECT id FROM probe ORDER BY id")
    assert [int(r["id"]) for r in rows] == kept
    entries = await assert_sound_chain(core.db, len(kept))
    assert [e.details["i"] for e in entries] == kept


async def test_a_failing_job_raises_to_its_caller(probe: Core) -> None:
    """submit raises the job's own exception, and the writer keeps running afterwards."""
    core = probe
    with pytest.raises(Boom) as info:
        await core.writer.submit(writing(7, fail=True))
    assert info.value.args == (7,)
    assert await core.writer.submit(writing(8)) == 8
    assert await count(core.db, "probe") == 1
    entries = await assert_sound_chain(core.db, 1)
    assert entries[0].details["i"] == 8


async def test_a_database_error_in_one_job_spares_the_batch(probe: Core) -> None:
    """A job whose statement fails (duplicate key) rolls back alone; on PostgreSQL too, where a
    failed statement would otherwise abort the whole transaction."""
    core = probe
    await core.writer.submit(writing(1000))

    async def duplicate(tx: WriteTx) -> None:
        await tx.execute("INSERT INTO probe (id, tag) VALUES (?, ?)", 2000, "first")
        tx.audit("key:test", "probe.written", "probe:dup")
        await tx.execute("INSERT INTO probe (id, tag) VALUES (?, ?)", 1000, "again")

    jobs: list[Any] = [writing(i) for i in range(5)]
    jobs.insert(2, duplicate)
    results = await submit_blocked(core, jobs)
    assert isinstance(results[2], Exception) and not isinstance(results[2], Boom)
    assert [r for k, r in enumerate(results) if k != 2] == list(range(5))
    rows = await core.db.fetch("SELECT id, tag FROM probe ORDER BY id")
    assert [(int(r["id"]), r["tag"]) for r in rows] == [
        *((i, "ok") for i in range(5)),
        (1000, "ok"),
    ]
    entries = await assert_sound_chain(core.db, 6)
    assert "probe:dup" not in {e.target for e in entries}


async def test_a_failing_read_in_one_job_spares_the_batch(probe: Core) -> None:
    """A job whose first statement is a read that fails in the database fails alone."""
    core = probe

    async def bad_read(tx: WriteTx) -> None:
        await tx.fetchrow("SELECT * FROM no_such_table WHERE id = ?", 1)

    async def bad_fetch(tx: WriteTx) -> None:
        await tx.fetch("SELECT * FROM no_such_table WHERE id = ?", 1)

    jobs: list[Any] = [writing(0), bad_read, writing(1), bad_fetch, writing(2)]
    results = await submit_blocked(core, jobs)
    assert results[0::2] == [0, 1, 2]
    assert isinstance(results[1], Exception) and isinstance(results[3], Exception)
    assert await count(core.db, "probe") == 3
    await assert_sound_chain(core.db, 3)


async def test_an_unhashable_audit_draft_fails_only_its_job(probe: Core) -> None:
    """A job whose audit details cannot be written as JSON fails alone, leaving no trace."""
    core = probe

    async def unhashable(tx: WriteTx) -> None:
        await tx.execute("INSERT INTO probe (id, tag) VALUES (?, ?)", 99, "bad-draft")
        tx.audit("key:test", "probe.written", "probe:99", value=object())

    results = await submit_blocked(core, [writing(0), unhashable, writing(1)])
    assert results[0] == 0 and results[2] == 1
    assert isinstance(results[1], Exception)
    rows = await core.db.fetch("SELECT id FROM probe ORDER BY id")
    assert [int(r["id"]) for r in rows] == [0, 1]
    entries = await assert_sound_chain(core.db, 2)
    assert [e.details["i"] for e in entries] == [0, 1]


# -- durability ----------------------------------------------------------------------------------


async def test_durable_settings(core: Core) -> None:
    """SQLite: WAL with synchronous=FULL on the writer's connection and the reader;
    PostgreSQL: synchronous_commit=on on every pooled connection and in the writer."""
    if core.db.is_postgres:

        async def show(tx: WriteTx) -> str:
            row = (await tx.fetch("SHOW synchronous_commit"))[0]
            return str(row["synchronous_commit"])

        assert await core.writer.submit(show) == "on"
        pool = core.db.engine.pool  # type: ignore[attr-defined]
        conns = [await pool.acquire() for _ in range(4)]  # several distinct pool connections
        try:
            values = {await c.fetchval("SHOW synchronous_commit") for c in conns}
        finally:
            for c in conns:
                await pool.release(c)
        assert values == {"on"}
        row = await core.db.fetchrow("SHOW synchronous_commit")
        assert row is not None and row["synchronous_commit"] == "on"
        return

    async def pragmas(tx: WriteTx) -> tuple[int, str]:
        sync = (await tx.fetch("PRAGMA synchronous"))[0]["synchronous"]
        mode = (await tx.fetch("PRAGMA journal_mode"))[0]["journal_mode"]
        return int(sync), str(mode).lower()

    assert await core.writer.submit(pragmas) == (2, "wal")
    assert await core.writer.submit(pragmas) == (2, "wal")  # a later batch's connection too
    row = await core.db.fetchrow("PRAGMA synchronous")
    assert row is not None and int(row["synchronous"]) == 2
    row = await core.db.fetchrow("PRAGMA journal_mode")
    assert row is not None and str(row["journal_mode"]).lower() == "wal"


# -- idempotency ---------------------------------------------------------------------------------


def scope(key: str, fingerprint: str) -> IdempotencyScope:
    return IdempotencyScope(
        key, fingerprint, lambda result: (201, json.dumps({"id": result}).encode())
    )


async def submit_with(core: Core, s: IdempotencyScope | None, job: Any) -> Any:
    with idempotency_scope(s):
        return await core.writer.submit(job)


async def test_same_key_records_once(probe: Core) -> None:
    """20 concurrent submissions with one key: one records, 19 replay its answer."""
    core = probe
    key = "key:k1:retry-me"
    results = await asyncio.gather(
        *(submit_with(core, scope(key, "fp-1"), writing(i)) for i in range(20)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    replays = [r for r in results if isinstance(r, Replayed)]
    assert len(winners) == 1 and len(replays) == 19, results
    expected = json.dumps({"id": winners[0]}).encode()
    assert all(r.status == 201 and r.body == expected for r in replays)
    assert await count(core.db, "probe") == 1
    assert await count(core.db, "idempotency_keys", "WHERE key = ?", key) == 1
    await assert_sound_chain(core.db, 1)

    # a later retry, in its own batch, replays too
    with pytest.raises(Replayed) as info:
        await submit_with(core, scope(key, "fp-1"), writing(500))
    assert info.value.body == expected

    # the same key with another request is refused, and writes nothing
    with pytest.raises(KeyReused):
        await submit_with(core, scope(key, "fp-2"), writing(501))
    assert await count(core.db, "probe") == 1
    await assert_sound_chain(core.db, 1)


async def test_failed_job_stores_no_answer(probe: Core) -> None:
    """A job that fails stores no idempotent answer: the retry with the same key runs again."""
    core = probe
    key = "key:k1:fails-first"
    with pytest.raises(Boom):
        await submit_with(core, scope(key, "fp"), writing(1, fail=True))
    assert await count(core.db, "idempotency_keys") == 0
    assert await submit_with(core, scope(key, "fp"), writing(1)) == 1
    assert await count(core.db, "idempotency_keys") == 1
    await assert_sound_chain(core.db, 1)


async def test_a_scope_serves_one_job(probe: Core) -> None:
    """Inside one scope only the first submit is idempotent; different keys record separately."""
    core = probe
    with idempotency_scope(scope("key:k1:a", "fp")):
        assert await core.writer.submit(writing(1)) == 1
        assert await core.writer.submit(writing(2)) == 2  # no scope any more
    assert await submit_with(core, scope("key:k1:b", "fp"), writing(3)) == 3
    assert await count(core.db, "probe") == 3
    assert await count(core.db, "idempotency_keys") == 2


# -- two writers, one database -------------------------------------------------------------------


async def test_two_cores_on_one_database_do_not_fork_the_chain(
    probe: Core, settings: Settings
) -> None:
    """Two independent cores (two writers) writing at once still make one chain: no fork, no gap."""
    first = probe
    second = await open_core(settings)
    try:
        per_core = 120

        async def wave(core: Core, offset: int, start: int, stop: int) -> list[int]:
            return list(
                await asyncio.gather(
                    *(core.writer.submit(writing(offset + i)) for i in range(start, stop))
                )
            )

        results: list[int] = []
        for start in range(0, per_core, 30):  # interleave several waves from both cores
            a, b = await asyncio.gather(
                wave(first, 0, start, start + 30), wave(second, 10_000, start, start + 30)
            )
            results += a + b
        assert sorted(results) == sorted([*range(per_core), *range(10_000, 10_000 + per_core)])
        assert second.writer.batches >= 1 and first.writer.batches >= 1
        assert await count(first.db, "probe") == 2 * per_core
        entries = await assert_sound_chain(first.db, 2 * per_core)
        assert sorted(e.details["i"] for e in entries) == sorted(results)
        # the other core reads the same chain
        assert await audit_entries(second.db) == entries
        # idempotency holds across the two writers as well
        shared = [
            submit_with(c, scope("key:k2:shared", "fp"), writing(50_000 + i))
            for i, c in enumerate([first, second] * 5)
        ]
        outcomes = await asyncio.gather(*shared, return_exceptions=True)
        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
        assert sum(isinstance(o, Replayed) for o in outcomes) == 9
        await assert_sound_chain(first.db, 2 * per_core + 1)
    finally:
        await close_core(second)
