"""One object for the data store: the piccolo engine, plus raw SQL for hot paths.

SQL is written with `?` placeholders; on PostgreSQL they become `$1, $2, ...`.
SQLite reads share one persistent connection (piccolo would open one per query); SQLite writes
happen only inside transactions, which the single writer owns.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType, dict_factory
from piccolo.table import Table

Row = dict[str, Any]

_SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys = 1",
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 10000",
)


class _SQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine with durable connections and one shared reader."""

    _reader: aiosqlite.Connection | None = None

    async def get_connection(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(**self.connection_kwargs)
        conn.row_factory = dict_factory  # type: ignore[assignment]
        for pragma in _SQLITE_PRAGMAS:
            async with conn.execute(pragma):
                pass
        return conn

    async def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            self._reader = await self.get_connection()
        return self._reader

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: type[Table] | None = None,
    ) -> list[Row]:
        conn = await self.reader()
        async with conn.execute(query, args or []) as cursor:
            rows = await cursor.fetchall()
        return rows  # type: ignore[return-value]

    async def close_reader(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None


class UnstorableText(ValueError):
    """Text with a NUL character: PostgreSQL refuses it, so neither engine takes it."""


def _checked(args: Sequence[Any]) -> Sequence[Any]:
    for arg in args:
        if isinstance(arg, str) and "\x00" in arg:
            raise UnstorableText("text must not contain NUL (\\u0000) characters")
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
        path.parent.mkdir(parents=True, exist_ok=True)
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
            conn = await self.engine.reader()  # type: ignore[attr-defined]
            async with conn.execute("PRAGMA journal_mode = WAL"):
                pass

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
            await self.engine.close_connection_pool()
        else:
            await self.engine.close_reader()  # type: ignore[attr-defined]

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
        conn = await self.engine.reader()  # type: ignore[attr-defined]
        async with conn.execute(sql, args) as cursor:
            return list(await cursor.fetchall())

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if isinstance(self.engine, PostgresEngine):
            async with self.engine.transaction() as tx:
                yield Transaction(tx.connection, postgres=True)
        else:
            async with self.engine.transaction(TransactionType.immediate) as tx:
                yield Transaction(tx.connection, postgres=False)


class Transaction:
    """Raw SQL on the connection of an open piccolo transaction."""

    def __init__(self, connection: Any, *, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres

    async def execute(self, sql: str, *args: Any) -> None:
        _checked(args)
        if self.postgres:
            await self.connection.execute(_to_dollar(sql), *args)
        else:
            await self.connection.execute(sql, args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        for row in rows:
            _checked(row)
        if self.postgres:
            await self.connection.executemany(_to_dollar(sql), rows)
        else:
            await self.connection.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        _checked(args)
        if self.postgres:
            return [dict(r) for r in await self.connection.fetch(_to_dollar(sql), *args)]
        async with self.connection.execute(sql, args) as cursor:
            return list(await cursor.fetchall())

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None
