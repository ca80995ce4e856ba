"""One object for the data store: the piccolo engine, plus raw SQL for hot paths.

SQL is written with `?` placeholders; on PostgreSQL they become `$1, $2, ...`.
SQLite: reads share one persistent connection and run in place (piccolo would open a connection,
and a thread, per query); writes happen only inside transactions, which the single writer owns.
"""

from __future__ import annotations

import asyncio
import errno
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, dict_factory
from piccolo.table import Table

from consentry.storage.files import private_sqlite

Row = dict[str, Any]
# sqlite3's authorizer: (action, arg1, arg2, database, trigger or view) -> SQLITE_OK | SQLITE_DENY
Authorizer = Callable[[int, str | None, str | None, str | None, str | None], int]

_SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys = 1",
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 10000",
)


def _sqlite_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path,
        detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
        isolation_level=None,  # we say BEGIN and COMMIT ourselves
        check_same_thread=False,  # BEGIN and COMMIT run in a worker thread, one at a time
        timeout=10,
    )
    conn.row_factory = dict_factory
    for pragma in _SQLITE_PRAGMAS:
        conn.execute(pragma)
    return conn


class _SQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine, reading through one persistent connection.

    A point query in SQLite takes microseconds: running it on the event loop is cheaper than the
    thread hop aiosqlite makes for every statement (and piccolo opens a new connection per query).
    """

    _reader: sqlite3.Connection | None = None

    def reader(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = _sqlite_connect(self.path)
        return self._reader

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: type[Table] | None = None,
    ) -> list[Row]:
        return self.reader().execute(query, args or []).fetchall()

    def close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class UnstorableText(ValueError):
    """Text with a NUL character: PostgreSQL refuses it, so neither engine takes it."""


class UnstorableTime(ValueError):
    """A time that falls outside years 1-9999 once converted to UTC."""


class StorageFull(RuntimeError):
    """The data store has no room left (disk or database full): nothing was recorded.

    Transient from the caller's point of view: the same request succeeds once an operator frees
    space, with no restart. The API answers 503 with Retry-After.
    """

    retry_after = 30  # seconds: long enough for an operator's alert, short enough for a client

    def __init__(self, detail: str = "the storage is full") -> None:
        super().__init__(detail)


# PostgreSQL class 53 "insufficient resources": disk_full, out_of_memory. SQLite: SQLITE_FULL.
_FULL_SQLSTATES = frozenset({"53100", "53200"})


def is_storage_full(exc: BaseException) -> bool:
    """Whether an error of either engine, or of the file system, means "no room left"."""
    if isinstance(exc, StorageFull):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        return code == sqlite3.SQLITE_FULL or (code is None and "is full" in str(exc))
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return getattr(exc, "sqlstate", None) in _FULL_SQLSTATES


def _checked(args: Sequence[Any]) -> Sequence[Any]:
    for arg in args:
        if isinstance(arg, str) and "\x00" in arg:
            raise UnstorableText("text must not contain NUL (\\u0000) characters")
        if isinstance(arg, datetime) and arg.tzinfo is not None:
            try:
                arg.astimezone(UTC)
            except OverflowError:
                raise UnstorableTime(
                    f"{arg.isoformat()} is out of range once converted to UTC (years 1-9999)"
                ) from None
    return args


@lru_cache(maxsize=512)
def _to_dollar(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def _split_postgres_url(url: str) -> tuple[str, dict[str, str]]:
    """asyncpg takes server settings apart from the DSN; we accept them as query parameters."""
    parts = urlsplit(url)
    settings = dict(parse_qsl(parts.query))
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return dsn, settings


class Database:
    def __init__(self, url: str) -> None:
        self._writer: sqlite3.Connection | None = None
        self._writer_lock = asyncio.Lock()
        self._plain: sqlite3.Connection | None = None  # no type conversion: bulk scans
        self._sessions: dict[str, Any] = {}  # PostgreSQL: a pool per role, see `session_as`
        self._sessions_lock = asyncio.Lock()
        self.url = url
        self.is_postgres = url.startswith(("postgres://", "postgresql://"))
        self.engine: Engine[Any] = self._make_engine(url)

    def _make_engine(self, url: str) -> Engine[Any]:
        if self.is_postgres:
            dsn, server_settings = _split_postgres_url(url)
            server_settings.setdefault("synchronous_commit", "on")
            server_settings.setdefault("application_name", "consentry")
            return PostgresEngine(config={"dsn": dsn, "server_settings": server_settings})
        path = Path(url.removeprefix("sqlite:///"))
        private_sqlite(path)  # before SQLite creates it 0644; its WAL and SHM follow its mode
        return _SQLiteEngine(path=str(path), timeout=10)

    @property
    def schema_name(self) -> str | None:
        if not self.is_postgres:
            return None
        return _split_postgres_url(self.url)[1].get("search_path")

    async def start(self, *, pool_size: int = 8) -> None:
        if isinstance(self.engine, PostgresEngine):
            schema = self.schema_name
            if schema:
                await self._ensure_schema(schema)
            await self.engine.start_connection_pool(min_size=1, max_size=pool_size)
        else:
            self._sqlite().reader().execute("PRAGMA journal_mode = WAL").fetchall()

    async def _ensure_schema(self, schema: str) -> None:
        import asyncpg

        dsn, _ = _split_postgres_url(self.url)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        finally:
            await conn.close()

    async def close(self) -> None:
        if isinstance(self.engine, PostgresEngine):
            for pool in self._sessions.values():
                await pool.close()
            self._sessions.clear()
            await self.engine.close_connection_pool()
        else:
            self._sqlite().close_reader()
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if self._plain is not None:
                self._plain.close()
                self._plain = None

    async def truncate_wal(self) -> None:
        """SQLite: copy the write-ahead log into the database and empty it, so pages as they
        were before a secure delete are gone from disk too. PostgreSQL: nothing to do here."""
        if isinstance(self.engine, PostgresEngine):
            return
        async with self._writer_lock:
            if self._writer is None:
                self._writer = await asyncio.to_thread(_sqlite_connect, self._sqlite().path)
            await asyncio.to_thread(self._writer.execute, "PRAGMA wal_checkpoint(TRUNCATE)")

    def bind(self, tables: Sequence[type[Table]]) -> None:
        for table in tables:
            table._meta.db = self.engine

    # -- raw SQL outside transactions (reads) --------------------------------------------------

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        _checked(args)
        if isinstance(self.engine, PostgresEngine):
            assert self.engine.pool is not None, "Database.start() opens the pool"
            async with self.engine.pool.acquire() as conn:
                records = await conn.fetch(_to_dollar(sql), *args)
            return [dict(r) for r in records]
        return self._sqlite().reader().execute(sql, args).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetch_authorized(self, authorizer: Authorizer, sql: str, *args: Any) -> list[Row]:
        """SQLite: `fetch`, with `authorizer` deciding what the statement may touch."""
        _checked(args)
        reader = self._sqlite().reader()
        reader.set_authorizer(authorizer)  # statements run in place: nothing else runs meanwhile
        try:
            return reader.execute(sql, args).fetchall()
        finally:
            reader.set_authorizer(None)

    @asynccontextmanager
    async def session_as(
        self, role: str, password: str, *, readonly: bool = False
    ) -> AsyncIterator[Transaction]:
        """PostgreSQL: a transaction in a session logged in as `role`, so a statement may touch
        exactly what that role may (`RESET ROLE` has nowhere to go back to). A small pool per
        role, opened on first use and closed with the database."""
        import asyncpg

        async with self._sessions_lock:
            if role not in self._sessions:
                dsn, settings = _split_postgres_url(self.url)
                self._sessions[role] = await asyncpg.create_pool(
                    dsn,
                    user=role,
                    password=password,
                    server_settings={**settings, "application_name": role},
                    min_size=0,
                    max_size=2,
                )
        async with self._sessions[role].acquire() as conn, conn.transaction(readonly=readonly):
            yield Transaction(conn, postgres=True)

    async def fetch_tuples(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows as tuples, values as stored (SQLite: timestamps stay text): for bulk scans
        such as audit verification, where converting every value would cost more than the
        work itself."""
        _checked(args)
        if isinstance(self.engine, PostgresEngine):
            assert self.engine.pool is not None, "Database.start() opens the pool"
            async with self.engine.pool.acquire() as conn:
                records = await conn.fetch(_to_dollar(sql), *args)
            return [tuple(r) for r in records]
        if self._plain is None:
            self._plain = sqlite3.connect(self._sqlite().path, check_same_thread=False)
            self._plain.execute("PRAGMA query_only = 1")
        return self._plain.execute(sql, args).fetchall()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if isinstance(self.engine, PostgresEngine):
            # asyncpg's own transaction, not piccolo's: when COMMIT fails (a deferred check, a
            # full disk) piccolo neither releases the connection nor resets its "current
            # transaction", and every later transaction of the task would join the dead one.
            assert self.engine.pool is not None, "Database.start() opens the pool"
            async with self.engine.pool.acquire() as conn, conn.transaction():
                yield Transaction(conn, postgres=True)
        else:
            async with self._sqlite_transaction() as tx:
                yield tx

    def _sqlite(self) -> _SQLiteEngine:
        assert isinstance(self.engine, _SQLiteEngine)
        return self.engine

    @asynccontextmanager
    async def _sqlite_transaction(self) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE and the fsyncing COMMIT run in a thread; statements run in place.

        Waiting for another process's write lock, or for the disk, never stalls the event loop.
        """
        if self._writer is None:
            self._writer = await asyncio.to_thread(_sqlite_connect, self._sqlite().path)
        conn = self._writer
        async with self._writer_lock:
            await asyncio.to_thread(conn.execute, "BEGIN IMMEDIATE")
            try:
                yield Transaction(conn, postgres=False)
                await asyncio.to_thread(conn.execute, "COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


class Transaction:
    """Raw SQL in an open transaction: asyncpg on PostgreSQL, sqlite3 in place on SQLite."""

    def __init__(self, connection: Any, *, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; the number of rows it changed (0 when it says none)."""
        _checked(args)
        if self.postgres:
            return _changed(await self.connection.execute(_to_dollar(sql), *args))
        changed: int = self.connection.execute(sql, args).rowcount
        return max(changed, 0)

    async def execute_one(self, sql: str, *args: Any) -> int:
        """`execute`, refusing a string of several statements on PostgreSQL too (where, without
        arguments, `execute` would run `...; COMMIT; ...`); SQLite always does."""
        if not self.postgres:
            return await self.execute(sql, *args)
        _checked(args)
        statement = await self.connection.prepare(_to_dollar(sql))  # the extended protocol
        await statement.fetch(*args)
        return _changed(statement.get_statusmsg())

    async def execute_authorized(self, authorizer: Authorizer, sql: str, *args: Any) -> int:
        """SQLite: `execute`, with `authorizer` deciding what the statement may touch."""
        assert not self.postgres, "PostgreSQL bounds a statement by its role: session_as"
        self.connection.set_authorizer(authorizer)
        try:
            return await self.execute_one(sql, *args)
        finally:
            self.connection.set_authorizer(None)

    async def fetch_authorized(self, authorizer: Authorizer, sql: str, *args: Any) -> list[Row]:
        """SQLite: `fetch`, with `authorizer` deciding what the statement may touch."""
        assert not self.postgres, "PostgreSQL bounds a statement by its role: session_as"
        self.connection.set_authorizer(authorizer)
        try:
            return await self.fetch(sql, *args)
        finally:
            self.connection.set_authorizer(None)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        for row in rows:
            _checked(row)
        if self.postgres:
            await self.connection.executemany(_to_dollar(sql), rows)
        else:
            self.connection.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        _checked(args)
        if self.postgres:
            return [dict(r) for r in await self.connection.fetch(_to_dollar(sql), *args)]
        rows: list[Row] = self.connection.execute(sql, args).fetchall()
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


def _changed(status: str) -> int:
    """The rows a PostgreSQL command tag says changed: "INSERT 0 3", "DELETE 1"; "DO" is 0."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
