"""The Merkle tree over the audit log, kept in the database, and the signed checkpoints over it.

Leaves are the entries' chain hashes. Perfect subtrees of 256 leaves and more are stored in
`audit_nodes` as the tree grows (about one row per 128 entries); anything smaller is computed
from the entries on demand. That is enough to answer inclusion and consistency proofs with a few
small queries, and to restore the tree's frontier at start without reading the log again.

The checkpointer signs a checkpoint every second or every 1,000 entries, whichever comes first,
on demand, and once more at shutdown. Before signing it re-checks the new entries' links and
hashes: a checkpoint never vouches for a broken chain.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from datetime import datetime

import structlog

from consentry.audit import merkle
from consentry.audit.chain import GENESIS_HASH
from consentry.audit.checkpoints import Checkpoint, sign_checkpoint
from consentry.audit.frontier import Frontier
from consentry.audit.verify import ROW_COLUMNS, LogVerifier
from consentry.clock import Clock
from consentry.crypto.secrets import replace_secret_file
from consentry.crypto.signing import KeyRing, PublicKey, SigningKey, b64url, b64url_decode
from consentry.domain.errors import Conflict, NotFound
from consentry.settings import Settings
from consentry.storage.database import Database, Row
from consentry.storage.writer import Writer, WriteTx

log = structlog.get_logger("consentry.audit")

NODE_LEVEL = 8  # perfect subtrees of 2**8 leaves and up are stored
CHUNK = 10_000  # entries read per query when the tree grows


def node_key(level: int, index: int) -> int:
    return level << 48 | index


def checkpoint_of(row: Row) -> Checkpoint:
    return Checkpoint(
        int(row["tree_size"]),
        row["root"],
        row["head_hash"],
        row["at"],
        row["key_id"],
        row["signature"],
    )


class TreeStore:
    """Subtree hashes and proofs, read from stored nodes and entries."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes of entries start+1 .. end (leaf indexes start .. end-1)."""
        rows = await self.db.fetch(
            "SELECT hash FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq", start, end
        )
        if len(rows) != end - start:
            raise Conflict(f"audit entries {start + 1}..{end} are not all present")
        return [merkle.leaf_hash(bytes.fromhex(r["hash"])) for r in rows]

    async def perfect(self, pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Hashes of perfect subtrees (level, index): stored ones looked up, small ones built."""
        wanted = set(pairs)
        found: dict[tuple[int, int], bytes] = {}
        stored = [p for p in wanted if p[0] >= NODE_LEVEL]
        for i in range(0, len(stored), 500):
            part = stored[i : i + 500]
            rows = await self.db.fetch(
                f"SELECT key, hash FROM audit_nodes WHERE key IN ({','.join('?' * len(part))})",
                *[node_key(level, index) for level, index in part],
            )
            for r in rows:
                key = int(r["key"])
                found[(key >> 48, key & (1 << 48) - 1)] = bytes.fromhex(r["hash"])
        if len(found) != len(stored):
            raise Conflict("the audit tree has not been built that far yet; try again shortly")
        blocks: dict[int, list[tuple[int, int]]] = {}
        for level, index in wanted:
            if level < NODE_LEVEL:
                blocks.setdefault((index << level) >> NODE_LEVEL, []).append((level, index))
        for block, members in blocks.items():
            start = block << NODE_LEVEL
            end = max((index + 1) << level for level, index in members)
            leaves = await self.leaves(start, end)
            for level, index in members:
                first = (index << level) - start
                found[(level, index)] = merkle.root(leaves[first : first + (1 << level)])
        return found

    async def range_roots(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        needed = [p for start, end in ranges for p in merkle.perfect_subtrees(start, end)]
        hashes = await self.perfect(needed)
        return [merkle.range_root(start, end, hashes) for start, end in ranges]

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return await self.range_roots(merkle.inclusion_ranges(index, size))

    async def inclusion_proofs(self, seqs: list[int], size: int) -> list[list[bytes]]:
        """Proofs for many entries at once: shared subtrees are read once."""
        ranges = [merkle.inclusion_ranges(seq - 1, size) for seq in seqs]
        flat = await self.range_roots([r for rs in ranges for r in rs])
        proofs, at = [], 0
        for rs in ranges:
            proofs.append(flat[at : at + len(rs)])
            at += len(rs)
        return proofs

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return await self.range_roots(merkle.consistency_ranges(old_size, new_size))

    async def frontier(self, size: int) -> Frontier:
        if size == 0:
            return Frontier()
        pairs = merkle.perfect_subtrees(0, size)
        hashes = await self.perfect(pairs)
        return Frontier.from_json({"size": size, "hashes": [hashes[p].hex() for p in pairs]})


class Checkpointer:
    def __init__(
        self,
        db: Database,
        writer: Writer,
        key: SigningKey,
        clock: Clock,
        *,
        every_seconds: float = 1.0,
        every_entries: int = 1000,
    ) -> None:
        self.db = db
        self.writer = writer
        self.key = key
        self._clock = clock
        self._every_seconds = every_seconds
        self._every_entries = every_entries
        self.tree = TreeStore(db)
        self._frontier = Frontier()
        self._head_hash = GENESIS_HASH
        self.latest: Checkpoint | None = None
        self.lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await register_key(self.db, self.writer, self.key)
        row = await self.db.fetchrow(
            "SELECT * FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1"
        )
        if row is not None:
            self.latest = checkpoint_of(row)
            self._frontier = await self.tree.frontier(self.latest.tree_size)
            self._head_hash = self.latest.head_hash
        self.writer.on_commit.append(self._committed)
        self._task = asyncio.create_task(self._run(), name="consentry-checkpointer")

    async def stop(self) -> None:
        """Stop the timer and sign what is left, so a clean shutdown leaves no unsigned tail."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        with contextlib.suppress(Exception):
            await self.checkpoint()

    def _committed(self, head_seq: int) -> None:
        if head_seq - self._frontier.size >= self._every_entries:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._every_seconds)
            self._wake.clear()
            try:
                await self.checkpoint()
            except Exception as exc:  # logged and retried on the next tick; never silent
                log.error("audit.checkpoint_failed", error=str(exc))

    async def checkpoint(self) -> Checkpoint:
        """Sign a checkpoint over every committed entry (the latest one if nothing is new)."""
        async with self.lock:
            head = await self.db.fetchrow("SELECT seq FROM audit_head WHERE id = 1")
            head_seq = int(head["seq"]) if head else 0
            if self.latest is not None and self.latest.tree_size >= head_seq:
                return self.latest
            nodes = await self._grow(head_seq)
            cp = sign_checkpoint(
                self.key,
                self._frontier.size,
                self._frontier.root().hex(),
                self._head_hash,
                self._clock(),
            )

            async def job(tx: WriteTx) -> None:
                if nodes:
                    await tx.executemany(
                        "INSERT INTO audit_nodes (key, hash) VALUES (?, ?)"
                        " ON CONFLICT (key) DO NOTHING",
                        [(node_key(level, index), h.hex()) for level, index, h in nodes],
                    )
                await tx.execute(
                    "INSERT INTO audit_checkpoints"
                    " (tree_size, root, head_hash, at, key_id, signature)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tree_size) DO NOTHING",
                    cp.tree_size,
                    cp.root,
                    cp.head_hash,
                    cp.at,
                    cp.key_id,
                    cp.signature,
                )

            await self.writer.submit(job)
            self.latest = cp
            return cp

    async def _grow(self, head_seq: int) -> list[tuple[int, int, bytes]]:
        """Extend the tree to `head_seq`, checking every new entry; the new stored nodes."""
        verifier = LogVerifier.resume(self._frontier, self._head_hash, keep_from_level=NODE_LEVEL)
        while self._frontier.size < head_seq:
            start = self._frontier.size
            end = min(head_seq, start + CHUNK)
            rows = await self.db.fetch_tuples(
                f"SELECT {ROW_COLUMNS} FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq",
                start,
                end,
            )
            if not verifier.feed_rows(rows) or self._frontier.size != end:
                broken = verifier.report.broken
                where = f"seq {broken.seq}: {broken.found}" if broken else f"after seq {start}"
                raise RuntimeError(f"refusing to sign: the audit chain is broken at {where}")
            self._head_hash = rows[-1][8]
            await asyncio.sleep(0)  # a long first build must not starve requests
        return verifier.nodes


# -- keys ----------------------------------------------------------------------------------------


async def register_key(
    db: Database, writer: Writer, key: SigningKey, actor: str = "system"
) -> None:
    """Publish the current key and retire every other one. A change of key (a rotation, through
    the API or a new CONSENTRY_SIGNING_KEY) is audited; the very first key is not a change."""
    row = await db.fetchrow("SELECT retired_at FROM signing_keys WHERE key_id = ?", key.key_id)
    if row is not None and row["retired_at"] is None:
        return

    async def job(tx: WriteTx) -> None:
        retired = await tx.fetch(
            "SELECT key_id FROM signing_keys WHERE key_id <> ? AND retired_at IS NULL",
            key.key_id,
        )
        await tx.execute(
            "UPDATE signing_keys SET retired_at = ? WHERE key_id <> ? AND retired_at IS NULL",
            tx.now,
            key.key_id,
        )
        await tx.execute(
            "INSERT INTO signing_keys (key_id, public_key, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key_id) DO UPDATE SET retired_at = NULL",
            key.key_id,
            b64url(key.public.raw),
            tx.now,
        )
        if retired:
            tx.audit(
                actor,
                "signing_key.rotated",
                f"signing_key:{key.key_id}",
                retired=[r["key_id"] for r in retired],
            )

    await writer.submit(job)


async def rotate_key(checkpointer: Checkpointer, settings: Settings, actor: str) -> SigningKey:
    """A new signing key from now on. The old one signs a last checkpoint first, then its
    private half is destroyed; its public half stays published so old signatures verify."""
    if settings.signing_key.strip():
        raise Conflict(
            "the signing key comes from CONSENTRY_SIGNING_KEY: set a new value"
            " (openssl rand -base64 32) on every instance and restart them"
        )
    await checkpointer.checkpoint()
    new = SigningKey(replace_secret_file(settings, "signing_key"))
    async with checkpointer.lock:
        checkpointer.key = new
    await register_key(checkpointer.db, checkpointer.writer, new, actor)
    return new


async def published_keys(db: Database) -> list[tuple[PublicKey, datetime, datetime | None]]:
    rows = await db.fetch("SELECT * FROM signing_keys ORDER BY created_at")
    return [
        (PublicKey.from_raw(b64url_decode(r["public_key"])), r["created_at"], r["retired_at"])
        for r in rows
    ]


async def key_ring(db: Database) -> KeyRing:
    return KeyRing(k for k, _, _ in await published_keys(db))


# -- reading checkpoints ---------------------------------------------------------------------------


async def checkpoints(db: Database, *, before: int | None, limit: int) -> list[Checkpoint]:
    """Newest first; `before` is an exclusive tree size (the cursor)."""
    rows = await db.fetch(
        "SELECT * FROM audit_checkpoints WHERE tree_size < ? ORDER BY tree_size DESC LIMIT ?",
        before if before is not None else 2**62,
        limit,
    )
    return [checkpoint_of(r) for r in rows]


async def all_checkpoints(db: Database) -> list[Checkpoint]:
    rows = await db.fetch("SELECT * FROM audit_checkpoints ORDER BY tree_size")
    return [checkpoint_of(r) for r in rows]


async def checkpoint_at(db: Database, tree_size: int) -> Checkpoint:
    row = await db.fetchrow("SELECT * FROM audit_checkpoints WHERE tree_size = ?", tree_size)
    if row is None:
        raise NotFound(f"no signed checkpoint has tree size {tree_size}")
    return checkpoint_of(row)
