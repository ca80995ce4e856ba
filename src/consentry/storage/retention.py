"""Stored idempotent answers expire: kept `idempotency_retention_hours`, then purged.

A retry after the retention is a new request (the writer ignores an expired answer); this task
deletes expired answers in the background, through the writer, in batches so a large backlog
never holds the writer for long. Deleting them changes nothing a customer or an auditor sees
(they are a cache of answers, not records), so a purge writes no audit entry.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from consentry.storage.writer import Writer, WriteTx

BATCH = 1000
log = structlog.get_logger("consentry.retention")


class IdempotencyPurger:
    def __init__(
        self, writer: Writer, retention: timedelta, *, every_seconds: float = 600.0
    ) -> None:
        self.writer = writer
        self.retention = retention
        self._every_seconds = every_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="consentry-idempotency-purger")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:  # the first purge right after start: a backlog from downtime goes at once
            try:
                await self.purge()
            except Exception as exc:  # logged and retried on the next tick; never silent
                log.error("idempotency.purge_failed", error=type(exc).__name__)
            await asyncio.sleep(self._every_seconds)

    async def purge(self) -> int:
        """Delete every stored answer older than the retention; how many went."""
        total = 0
        while True:
            done = await self.writer.submit(self._batch)
            total += done
            if done < BATCH:
                return total

    async def _batch(self, tx: WriteTx) -> int:
        rows = await tx.fetch(
            "SELECT key FROM idempotency_keys WHERE created_at < ? LIMIT ?",
            tx.now - self.retention,
            BATCH,
        )
        gone = [(r["key"],) for r in rows]
        await tx.executemany("DELETE FROM idempotency_keys WHERE key = ?", gone)
        return len(rows)
