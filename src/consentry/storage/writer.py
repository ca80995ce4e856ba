"""The single writer: every change, with its audit entries, goes through one task.

Callers submit jobs; the writer runs whatever is waiting as one transaction (group commit), each
job inside its own savepoint so a failing job takes back only its own rows and audit entries.
The audit head is read (and on PostgreSQL locked) at the start of every batch, so writers in
other processes serialize on it instead of forking the chain. A job's result is handed back
only after COMMIT: acknowledged means durable.

A full disk is the batch's failure, not a job's: the first job (or audit append, or COMMIT) that
finds no room rolls the whole transaction back and every job of the batch fails with
`StorageFull`. Nothing is half written, the in-memory head stays at what was committed, and the
next batch, once space returns, chains on from the stored head.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID

import structlog

from consentry.audit.chain import AuditDraft, AuditEntry, chain, purposes_of
from consentry.clock import Clock
from consentry.crypto.canonical import canonical_json
from consentry.crypto.envelope import encrypt, is_sealed
from consentry.storage.database import (
    Authorizer,
    Database,
    Row,
    StorageFull,
    Transaction,
    is_storage_full,
)
from consentry.storage.idempotency import (
    IdempotencyScope,
    KeyReused,
    Replayed,
    answer_aad,
    current_scope,
)

T = TypeVar("T")
log = structlog.get_logger("consentry.writer")


class WriteTx:
    """What a job sees: raw SQL on the batch transaction, the time, and an audit buffer."""

    def __init__(self, tx: Transaction, clock: Clock, last: datetime | None) -> None:
        self._tx = tx
        self._clock = clock
        self._last = last
        self.now = self.stamp()
        self.postgres = tx.postgres
        self.drafts: list[AuditDraft] = []
        self._savepoint: str | None = None
        self._counter = 0
        self.concerning: tuple[UUID, bytes | None] | None = None

    def concerns(self, subject_id: UUID, data_key: bytes | None = None) -> None:
        """This job's answer is about one customer: an idempotent replay of it is stored with
        the customer's id (erasure removes it) and, given the data key, sealed with it."""
        self.concerning = (subject_id, data_key)

    async def _before_write(self) -> None:
        if self._savepoint is None:
            self._counter += 1
            self._savepoint = f"job_{self._counter}"
            await self._tx.execute(f"SAVEPOINT {self._savepoint}")

    async def execute(self, sql: str, *args: Any) -> None:
        await self._before_write()
        await self._tx.execute(sql, *args)

    async def execute_authorized(self, authorizer: Authorizer, sql: str, *args: Any) -> int:
        """SQLite: one statement under `authorizer` (a plugin's: its own tables only); the
        number of rows it changed."""
        await self._before_write()
        return await self._tx.execute_authorized(authorizer, sql, *args)

    async def fetch_authorized(self, authorizer: Authorizer, sql: str, *args: Any) -> list[Row]:
        """SQLite: a read under `authorizer` in this transaction."""
        return await self._tx.fetch_authorized(authorizer, sql, *args)

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self._before_write()
        await self._tx.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if self.postgres:  # a failed statement aborts a PostgreSQL transaction: guard reads too
            await self._before_write()
        return await self._tx.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)  # same PostgreSQL guard as fetch
        return rows[0] if rows else None

    def audit(self, actor: str, action: str, target: str, **details: Any) -> None:
        self.drafts.append(AuditDraft(actor, action, target, details))

    def stamp(self) -> datetime:
        """A time strictly after every other this writer handed out: orders ledger rows."""
        now = self._clock()
        if self._last is not None and now <= self._last:
            now = self._last + timedelta(microseconds=1)
        self._last = now
        return now

    async def _begin_job(self) -> None:
        self.now = self.stamp()
        self.drafts = []
        self._savepoint = None
        self.concerning = None

    async def _end_job(self, ok: bool) -> None:
        if self._savepoint is None:
            return
        if ok:
            await self._tx.execute(f"RELEASE SAVEPOINT {self._savepoint}")
        else:
            await self._tx.execute(f"ROLLBACK TO SAVEPOINT {self._savepoint}")
            await self._tx.execute(f"RELEASE SAVEPOINT {self._savepoint}")


Job = Callable[[WriteTx], Awaitable[T]]


@dataclass
class _Pending(Generic[T]):
    job: Job[T]
    future: asyncio.Future[T]
    idem: IdempotencyScope | None = None
    result: Any = None
    error: BaseException | None = None


class WriterStopped(RuntimeError):
    pass


class Writer:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        policy_version: Callable[[], str],
        max_batch: int = 100,
        idempotency_retention: timedelta = timedelta(hours=24),
    ) -> None:
        self._db = db
        self.idempotency_retention = idempotency_retention
        self._clock = clock
        self._policy_version = policy_version
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending[Any] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._last_stamp: datetime | None = None
        self.batches = 0
        self.jobs = 0
        self.head_seq = 0  # the audit head after this writer's last commit
        self._pending_head = 0  # the head the open batch will have once it commits
        self.on_commit: list[Callable[[int], None]] = []  # called with head_seq after COMMIT

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="consentry-writer")

    async def stop(self) -> None:
        if self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = None

    async def submit(self, job: Job[T]) -> T:
        if self._task is None or self._task.done():
            raise WriterStopped("the writer is not running")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(job, future, current_scope()))
        return await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch: list[_Pending[Any]] = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending[Any]]) -> None:
        try:
            async with self._db.transaction() as tx:
                await self._apply(tx, batch)
        except Exception as exc:  # the batch as a whole failed: nothing was committed
            full = is_storage_full(exc)
            log.error("writer.batch_failed", error=type(exc).__name__, jobs=len(batch), full=full)
            for item in batch:
                if not item.future.done():
                    # no room: every job failed alike (a job's own error was rolled back too)
                    item.future.set_exception(StorageFull() if full else item.error or exc)
            return
        self.head_seq = self._pending_head  # only now is the new head durable
        self.batches += 1
        self.jobs += len(batch)
        for listener in self.on_commit:
            listener(self.head_seq)
        for item in batch:
            if item.future.done():
                continue
            if item.error is not None:
                item.future.set_exception(item.error)
            else:
                item.future.set_result(item.result)

    async def _apply(self, tx: Transaction, batch: list[_Pending[Any]]) -> None:
        head = await tx.fetchrow(
            "SELECT seq, hash FROM audit_head WHERE id = 1" + (" FOR UPDATE" if tx.postgres else "")
        )
        if head is None:
            raise RuntimeError("audit_head is missing: run `consentry migrate`")
        wtx = WriteTx(tx, self._clock, self._last_stamp)
        drafts: list[AuditDraft] = []
        for item in batch:
            await wtx._begin_job()
            try:
                item.result = await _run_job(wtx, item, self.idempotency_retention)
                for draft in wtx.drafts:  # a draft that cannot be hashed fails its own job only
                    canonical_json([draft.actor, draft.action, draft.target, draft.details])
            except Exception as exc:
                if is_storage_full(exc):
                    raise  # the disk is full for every job: take the whole batch back
                item.error = exc
                await wtx._end_job(ok=False)
                continue
            await wtx._end_job(ok=True)
            drafts.extend(wtx.drafts)
        self._last_stamp = wtx.stamp()
        if drafts:
            entries = chain(
                drafts,
                head_seq=int(head["seq"]),
                head_hash=str(head["hash"]),
                at=self._clock(),
                policy_version=self._policy_version(),
            )
            await _append(tx, entries)
            self._pending_head = entries[-1].seq
        else:
            self._pending_head = int(head["seq"])


async def _run_job(tx: WriteTx, item: _Pending[Any], retention: timedelta) -> Any:
    idem = item.idem
    if idem is None:
        return await item.job(tx)
    stored = await tx.fetchrow(
        "SELECT fingerprint, status, body, subject_id, created_at FROM idempotency_keys"
        " WHERE key = ?",
        idem.key,
    )
    if stored is not None and stored["created_at"] <= tx.now - retention:
        # kept past its retention (the purger has not come by yet): the key is new again
        await tx.execute("DELETE FROM idempotency_keys WHERE key = ?", idem.key)
        stored = None
    if stored is not None:
        if stored["fingerprint"] != idem.fingerprint:
            raise KeyReused("this Idempotency-Key was already used with a different request")
        body = bytes(stored["body"])
        sealed = stored["subject_id"] is not None and is_sealed(body)
        raise Replayed(
            int(stored["status"]),
            body,
            sealed_for=UUID(str(stored["subject_id"])) if sealed else None,
            aad=answer_aad(idem.key),
        )
    result = await item.job(tx)
    status, body = idem.render(result)
    subject_id, data_key = tx.concerning or (None, None)
    if subject_id is not None and data_key is not None:
        body = encrypt(data_key, body, aad=answer_aad(idem.key))
    await tx.execute(
        "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at, subject_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        idem.key,
        idem.fingerprint,
        status,
        body,
        tx.now,
        subject_id,
    )
    return result


async def _append(tx: Transaction, entries: list[AuditEntry]) -> None:
    await tx.executemany(
        "INSERT INTO audit_log (seq, at, actor, action, target, details, policy_version,"
        " prev_hash, hash, purposes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.seq,
                e.at,
                e.actor,
                e.action,
                e.target,
                canonical_json(e.details).decode(),  # as hashed: verification reads it raw
                e.policy_version,
                e.prev_hash,
                e.hash,
                purposes_of(e.details),
            )
            for e in entries
        ],
    )
    last = entries[-1]
    await tx.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", last.seq, last.hash)
