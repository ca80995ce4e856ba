"""The per-subject data-key store, kept apart from the data store (invariant 4).

Each subject's data key (DEK) is stored only wrapped by the KEK, in its own SQLite file or its own
PostgreSQL schema, so that erasure (deleting the wrapped key: crypto-shredding) also makes that
subject's ciphertext in data-store backups unreadable. Unwrapped keys are cached in process memory,
bounded LRU; `destroy` evicts. Another process's cache is not reached: see `cache_size`.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiosqlite
import asyncpg

from consentry.clock import Clock, system_clock
from consentry.crypto.envelope import KEY_BYTES, new_data_key, unwrap_key, wrap_key
from consentry.crypto.secrets import kek_id
from consentry.storage.files import private_sqlite

DEFAULT_CACHE_SIZE = 50_000
DEFAULT_PG_SCHEMA = "consentry_keys"
_SQLITE_BATCH = 500
_SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


class KeyStoreError(RuntimeError):
    """The key store is misconfigured or used wrongly (no key material in the message)."""


class _LRU:
    """A bounded map of subject id to unwrapped DEK, least recently used evicted first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, subject_id: str) -> bytes | None:
        key = self._items.get(subject_id)
        if key is not None:
            self._items.move_to_end(subject_id)
        return key

    def put(self, subject_id: str, key: bytes) -> None:
        if self._size <= 0:
            return
        self._items[subject_id] = key
        self._items.move_to_end(subject_id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def evict(self, subject_id: str) -> None:
        self._items.pop(subject_id, None)

    def clear(self) -> None:
        self._items.clear()


class KeyStore(ABC):
    """Creates, reads and destroys per-subject data keys; backends store only wrapped keys.

    `cache_size` bounds the in-process cache of unwrapped keys (0 disables it). A `destroy` in one
    process does not evict the key from another process's cache; such a stale copy can only
    decrypt rows that erasure deletes anyway, and it disappears on eviction or restart.
    """

    def __init__(
        self, kek: bytes, *, cache_size: int = DEFAULT_CACHE_SIZE, clock: Clock = system_clock
    ) -> None:
        if len(kek) != KEY_BYTES:
            raise ValueError(f"KEK must be {KEY_BYTES} bytes")
        self._kek = kek
        self._kek_id = kek_id(kek)
        self._cache = _LRU(cache_size)
        self._clock = clock
        self._destroys = 0  # bumped by destroy, so a read racing a destroy does not re-cache
        self._opening = asyncio.Lock()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect and create the schema if missing; calling it again is harmless."""
        async with self._opening:
            await self._open()

    async def close(self) -> None:
        """Disconnect and forget every cached key."""
        self._cache.clear()
        await self._close()

    async def create(self, subject_id: str) -> bytes:
        """The subject's DEK, made and stored (wrapped) now unless one exists already."""
        cached = self._cache.get(subject_id)
        if cached is not None:
            return cached
        wrapped = wrap_key(self._kek, new_data_key(), subject_id=subject_id)
        epoch = self._destroys
        await self._insert_if_absent(subject_id, self._kek_id, wrapped, self._clock())
        stored = await self._fetch(subject_id)
        if stored is None:
            raise KeyStoreError("data key was destroyed while being created")
        return self._unwrap_and_cache(subject_id, stored, epoch)

    async def get(self, subject_id: str) -> bytes | None:
        """The subject's DEK, or None if it was never created or has been destroyed."""
        cached = self._cache.get(subject_id)
        if cached is not None:
            return cached
        epoch = self._destroys
        stored = await self._fetch(subject_id)
        return None if stored is None else self._unwrap_and_cache(subject_id, stored, epoch)

    async def get_many(self, subject_ids: Iterable[str]) -> dict[str, bytes]:
        """The DEKs that exist among `subject_ids`; missing or destroyed ones are left out."""
        found: dict[str, bytes] = {}
        missing: list[str] = []
        for subject_id in dict.fromkeys(subject_ids):
            cached = self._cache.get(subject_id)
            if cached is None:
                missing.append(subject_id)
            else:
                found[subject_id] = cached
        epoch = self._destroys
        for subject_id, stored in (await self._fetch_many(missing)).items():
            found[subject_id] = self._unwrap_and_cache(subject_id, stored, epoch)
        return found

    async def destroy(self, subject_id: str) -> bool:
        """Delete the subject's wrapped key (crypto-shredding); True if one existed."""
        self._cache.evict(subject_id)
        self._destroys += 1
        existed = await self._delete(subject_id)
        self._destroys += 1  # reads that began before the delete committed must not re-cache
        self._cache.evict(subject_id)
        return existed

    async def count(self) -> int:
        """How many subjects have a live data key."""
        return await self._count()

    def _unwrap_and_cache(self, subject_id: str, wrapped: bytes, epoch: int) -> bytes:
        key = unwrap_key(self._kek, wrapped, subject_id=subject_id)
        if epoch == self._destroys:
            self._cache.put(subject_id, key)
        return key

    @abstractmethod
    async def _open(self) -> None:
        """Connect and create the schema; a no-op if already open (called under a lock)."""

    @abstractmethod
    async def _close(self) -> None: ...

    @abstractmethod
    async def _insert_if_absent(
        self, subject_id: str, kek_id: str, wrapped: bytes, created_at: datetime
    ) -> None: ...

    @abstractmethod
    async def _fetch(self, subject_id: str) -> bytes | None: ...

    @abstractmethod
    async def _fetch_many(self, subject_ids: Sequence[str]) -> dict[str, bytes]: ...

    @abstractmethod
    async def _delete(self, subject_id: str) -> bool: ...

    @abstractmethod
    async def _count(self) -> int: ...


_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS subject_keys (
    subject_id TEXT PRIMARY KEY,
    kek_id TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    created_at TEXT NOT NULL
)
"""


class SQLiteKeyStore(KeyStore):
    """Keys in their own SQLite file (WAL, synchronous=FULL), over one aiosqlite connection."""

    def __init__(
        self,
        path: Path | str,
        kek: bytes,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Clock = system_clock,
    ) -> None:
        super().__init__(kek, cache_size=cache_size, clock=clock)
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the one connection

    async def _open(self) -> None:
        if self._db is not None:
            return
        private_sqlite(self.path)  # owner-only (0600, folder 0700) before SQLite opens it
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            # secure_delete: a destroyed key's bytes are overwritten, not left in a free page
            pragmas = (
                "journal_mode=WAL",
                "synchronous=FULL",
                "busy_timeout=5000",
                "secure_delete=ON",
            )
            for pragma in pragmas:
                await db.execute(f"PRAGMA {pragma}")
            await db.execute(_SQLITE_DDL)
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise KeyStoreError("key store is not open")
        return self._db

    async def _insert_if_absent(
        self, subject_id: str, kek_id: str, wrapped: bytes, created_at: datetime
    ) -> None:
        async with self._lock:
            await self._conn.execute(
                "INSERT INTO subject_keys (subject_id, kek_id, wrapped, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (subject_id) DO NOTHING",
                (subject_id, kek_id, wrapped, created_at.isoformat()),
            )

    async def _fetch(self, subject_id: str) -> bytes | None:
        sql = "SELECT wrapped FROM subject_keys WHERE subject_id = ?"
        async with self._lock, self._conn.execute(sql, (subject_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else bytes(row[0])

    async def _fetch_many(self, subject_ids: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for start in range(0, len(subject_ids), _SQLITE_BATCH):
            batch = subject_ids[start : start + _SQLITE_BATCH]
            marks = ",".join("?" * len(batch))
            sql = f"SELECT subject_id, wrapped FROM subject_keys WHERE subject_id IN ({marks})"
            async with self._lock, self._conn.execute(sql, tuple(batch)) as cursor:
                found.update({str(r[0]): bytes(r[1]) for r in await cursor.fetchall()})
        return found

    async def _delete(self, subject_id: str) -> bool:
        sql = "DELETE FROM subject_keys WHERE subject_id = ?"
        async with self._lock:  # no other statement open while the log is emptied
            async with self._conn.execute(sql, (subject_id,)) as cursor:
                existed = cursor.rowcount > 0
            if existed:  # the write-ahead log still holds the page as it was: empty it
                await self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return existed

    async def _count(self) -> int:
        async with self._lock, self._conn.execute("SELECT count(*) FROM subject_keys") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row is not None else 0


class PostgresKeyStore(KeyStore):
    """Keys in their own PostgreSQL schema (the URL's `search_path`), over an asyncpg pool."""

    def __init__(
        self,
        url: str,
        kek: bytes,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Clock = system_clock,
        pool_max_size: int = 10,
    ) -> None:
        super().__init__(kek, cache_size=cache_size, clock=clock)
        self.dsn, self.schema = split_search_path(url)
        self._table = f'"{self.schema}".subject_keys'
        self._pool_max_size = pool_max_size
        self._pool: asyncpg.Pool | None = None

    async def _open(self) -> None:
        if self._pool is None:
            self._pool = await self._connect()

    async def _connect(self) -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=self._pool_max_size,
            server_settings={"search_path": f'"{self.schema}"'},
        )
        try:
            await self._create_schema(pool)
        except BaseException:
            await pool.close()
            raise
        return pool

    async def _create_schema(self, pool: asyncpg.Pool) -> None:
        """Under an advisory lock: concurrent `CREATE ... IF NOT EXISTS` can otherwise collide."""
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._table)
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} ("
                "subject_id TEXT PRIMARY KEY, kek_id TEXT NOT NULL, "
                "wrapped BYTEA NOT NULL, created_at TIMESTAMPTZ NOT NULL)"
            )

    async def _close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            raise KeyStoreError("key store is not open")
        return self._pool

    async def _insert_if_absent(
        self, subject_id: str, kek_id: str, wrapped: bytes, created_at: datetime
    ) -> None:
        await self._db.execute(
            f"INSERT INTO {self._table} (subject_id, kek_id, wrapped, created_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (subject_id) DO NOTHING",
            subject_id,
            kek_id,
            wrapped,
            created_at,
        )

    async def _fetch(self, subject_id: str) -> bytes | None:
        sql = f"SELECT wrapped FROM {self._table} WHERE subject_id = $1"
        wrapped = await self._db.fetchval(sql, subject_id)
        return None if wrapped is None else bytes(wrapped)

    async def _fetch_many(self, subject_ids: Sequence[str]) -> dict[str, bytes]:
        if not subject_ids:
            return {}
        sql = f"SELECT subject_id, wrapped FROM {self._table} WHERE subject_id = ANY($1::text[])"
        rows = await self._db.fetch(sql, list(subject_ids))
        return {str(r["subject_id"]): bytes(r["wrapped"]) for r in rows}

    async def _delete(self, subject_id: str) -> bool:
        sql = f"DELETE FROM {self._table} WHERE subject_id = $1 RETURNING 1"
        return await self._db.fetchval(sql, subject_id) is not None

    async def _count(self) -> int:
        return int(await self._db.fetchval(f"SELECT count(*) FROM {self._table}"))


def split_search_path(url: str) -> tuple[str, str]:
    """(DSN without `search_path`, the schema it named or `consentry_keys`)."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in params if k == "search_path"), "") or DEFAULT_PG_SCHEMA
    if not _SCHEMA_RE.fullmatch(schema):
        raise KeyStoreError("key store search_path must be a single plain schema name")
    rest = urlencode([(k, v) for k, v in params if k != "search_path"])
    return urlunsplit(parts._replace(query=rest)), schema


def open_keystore(
    url: str, kek: bytes, *, cache_size: int = DEFAULT_CACHE_SIZE, clock: Clock = system_clock
) -> KeyStore:
    """A key store for `sqlite:///path` or `postgresql://...`; not yet open (`await .open()`,
    or use it as `async with open_keystore(url, kek) as keys:`)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return SQLiteKeyStore(path, kek, cache_size=cache_size, clock=clock)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresKeyStore(url, kek, cache_size=cache_size, clock=clock)
    raise KeyStoreError("key store URL must start with sqlite:/// or postgresql://")
