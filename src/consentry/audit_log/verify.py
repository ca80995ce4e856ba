"""Verifying the audit log in the database, on every core.

Worker processes each take a range of entries, recompute every hash and link inside it, and send
back the leaf hashes; the parent checks the links between ranges and folds the leaves into the
Merkle tree, comparing roots with the signed checkpoints as it goes (`LogVerifier.feed_leaves`).
A range a worker finds anything odd in is verified again, row by row, by the parent's exact
verifier, which names the first bad sequence number (and accepts a stored form that differs only
in spelling). Small logs are verified in process: starting workers costs more than it saves.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import msgspec

from consentry.audit.checkpoints import Checkpoint
from consentry.audit.verify import LogVerifier, Report, at_text
from consentry.crypto.signing import KeyRing
from consentry.storage.database import Database

CHUNK = 50_000  # rows per query
RANGE = 200_000  # entries per worker task
PARALLEL_FROM = 400_000  # smaller logs are verified in process

_encode = msgspec.json.Encoder(order="sorted").encode


def row_columns(postgres: bool) -> str:
    """The raw columns in `LogVerifier.feed_rows` order; PostgreSQL formats the time itself."""
    at = (
        "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
        if postgres
        else "at"
    )
    return f"seq, {at}, actor, action, target, details, policy_version, prev_hash, hash"


@dataclass(frozen=True, slots=True)
class RangeResult:
    first: int
    count: int
    first_prev: str
    last_hash: str
    digests: bytes  # the entries' chain hashes, raw, count * 32 bytes
    odd: bool  # something did not check out: the parent verifies this range row by row


def verify_range(url: str, first: int, last: int) -> RangeResult:
    """In a worker process: entries first..last, hashes and links, no tree."""
    return asyncio.run(_verify_range(url, first, last))


async def _verify_range(url: str, first: int, last: int) -> RangeResult:
    db = Database(url)
    await db.start(pool_size=1)
    sha256 = hashlib.sha256
    digests = bytearray()
    first_prev = last_hash = ""
    expected = first
    try:
        columns = row_columns(db.is_postgres)
        after = first - 1
        while after < last:
            rows = await db.fetch_tuples(
                f"SELECT {columns} FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                after,
                last,
                CHUNK,
            )
            if not rows:
                break
            for seq, at, actor, action, target, details, version, prev_hash, stored in rows:
                if seq != expected or (last_hash and prev_hash != last_hash):
                    return RangeResult(first, 0, first_prev, last_hash, b"", True)
                body = _encode(
                    {
                        "action": action,
                        "actor": actor,
                        "at": at_text(at),
                        "details": msgspec.Raw(details),
                        "policy_version": version,
                        "seq": seq,
                        "target": target,
                    }
                )
                raw = sha256(prev_hash.encode() + b"\n" + body).digest()
                if raw.hex() != stored:
                    return RangeResult(first, 0, first_prev, last_hash, b"", True)
                if not first_prev:
                    first_prev = prev_hash
                digests += raw
                last_hash = stored
                expected += 1
            after = int(rows[-1][0])
    finally:
        await db.close()
    count = expected - first
    return RangeResult(
        first, count, first_prev, last_hash, bytes(digests), count != last - first + 1
    )


async def verify_database(
    db: Database,
    url: str,
    checkpoints: list[Checkpoint],
    keys: KeyRing,
    *,
    head_seq: int,
    progress: Callable[[int], None] = lambda _: None,
    workers: int | None = None,
    range_size: int = RANGE,
    parallel_from: int = PARALLEL_FROM,
) -> Report:
    """Verify every entry up to `head_seq` against the checkpoints (see the module docstring)."""
    verifier = LogVerifier(checkpoints, keys)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if head_seq < parallel_from or workers < 2:
        await _sequential(db, verifier, 1, None, progress)
    else:
        await _parallel(db, url, verifier, head_seq, workers, range_size, progress)
    if verifier.report.broken is not None:
        return verifier.report
    return verifier.finish(head_seq=head_seq)


async def _sequential(
    db: Database,
    verifier: LogVerifier,
    first: int,
    last: int | None,
    progress: Callable[[int], None],
) -> bool:
    """Row by row through the exact verifier, entries first..last (or to the end)."""
    columns = row_columns(db.is_postgres)
    after = first - 1
    end = last if last is not None else 2**62
    while after < end:
        rows = await db.fetch_tuples(
            f"SELECT {columns} FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            after,
            end,
            CHUNK,
        )
        if not rows:
            return True
        if not verifier.feed_rows(rows):
            return False
        after = int(rows[-1][0])
        progress(verifier.report.entries)
    return True


async def _parallel(
    db: Database,
    url: str,
    verifier: LogVerifier,
    head_seq: int,
    workers: int,
    range_size: int,
    progress: Callable[[int], None],
) -> None:
    loop = asyncio.get_running_loop()
    ranges = [(a, min(a + range_size - 1, head_seq)) for a in range(1, head_seq + 1, range_size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [loop.run_in_executor(pool, verify_range, url, a, b) for a, b in ranges]
        try:
            for (first, last), future in zip(ranges, futures, strict=True):
                result = await future
                done = not result.odd and verifier.feed_digests(
                    result.first, result.first_prev, result.digests
                )
                if not done:
                    verifier.report.rechecked += 1
                    if not await _sequential(db, verifier, first, last, progress):
                        return
                progress(verifier.report.entries)
        finally:
            for future in futures:
                future.cancel()
