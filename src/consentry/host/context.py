"""What the core hands a plugin when it calls one of its hooks."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

from consentry.core.runtime import Core
from consentry.host.gate import CoreGate
from consentry.storage.database import Transaction
from consentry.storage.plugin_wall import (
    RULE,
    grant_role,
    is_refused,
    password_of,
    role_of,
    sqlite_authorizer,
)
from consentry.storage.writer import WriteTx

_WORD = re.compile(r"[a-z_][a-z0-9_]*")
_GRANTED = "plugin_roles"  # core.caches: the plugins whose role this core has granted


class ForeignTable(PermissionError):
    """A plugin's SQL reached for what is not its own (core data goes through the gate)."""


class CoreContext:
    """`PluginContext` for one plugin: its gate, its own tables (and only those), the clock.

    Its SQL runs behind the wall of `consentry.storage.plugin_wall`: the engine itself refuses
    every table but the plugin's own. Each `execute` is audited as `plugin.write` (actor
    `plugin:<name>`) with the tables it names and the rows it changed, never the values."""

    def __init__(self, core: Core, plugin: str) -> None:
        self._core = core
        self.plugin = plugin
        self.gate = CoreGate(core, plugin)
        tables = core.plugins.registry.tables
        self._own = frozenset(t._meta.tablename for owner, t in tables if owner == plugin)

    @contextmanager
    def _walled(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            if not is_refused(exc):
                raise
            raise ForeignTable(
                f"plugin {self.plugin} may use only its own tables"
                f" ({', '.join(sorted(self._own)) or 'none'}), and fetch only reads: {RULE}"
                f" ({exc})"
            ) from exc

    @asynccontextmanager
    async def _session(self, *, readonly: bool) -> AsyncIterator[Transaction]:
        """PostgreSQL: a transaction logged in as the plugin's role, granted once per core."""
        db, role = self._core.db, role_of(self.plugin)
        password = password_of(self._core.secrets.index_key, role)
        granted: set[str] = self._core.caches.setdefault(_GRANTED, set())
        if role not in granted:
            await grant_role(db, role, password, sorted(self._own))
            granted.add(role)
        async with db.session_as(role, password, readonly=readonly) as tx:
            yield tx

    def _audit(self, tx: WriteTx, sql: str, rows: int) -> None:
        named = sorted(set(_WORD.findall(sql.lower())) & self._own)
        actor = f"plugin:{self.plugin}"
        tx.audit(actor, "plugin.write", actor, tables=named, rows=rows)

    async def execute(self, sql: str, *args: Any) -> None:
        writer = self._core.writer
        with self._walled():
            if not self._core.db.is_postgres:
                authorizer = sqlite_authorizer(self._own, writes=True)

                async def job(tx: WriteTx) -> None:
                    self._audit(tx, sql, await tx.execute_authorized(authorizer, sql, *args))

                await writer.submit(job)
                return
            async with self._session(readonly=False) as session:
                rows = await session.execute_one(sql, *args)

                async def audit(tx: WriteTx) -> None:
                    self._audit(tx, sql, rows)

                await writer.submit(audit)  # recorded before the statement commits

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self._walled():
            if not self._core.db.is_postgres:
                return await self._core.db.fetch_authorized(
                    sqlite_authorizer(self._own, writes=False), sql, *args
                )
            async with self._session(readonly=True) as session:
                return await session.fetch(sql, *args)

    def now(self) -> datetime:
        return self._core.clock()
