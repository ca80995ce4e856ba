"""What the core hands a plugin when it calls one of its hooks or one of its routes: a context
bound, by the host, to that plugin alone (its name, gate, tables, settings and cache).

A plugin's SQL runs behind the wall of `consentry.storage.plugin_wall`: the engine itself
refuses every table but the plugin's own (SQLite: an authorizer; PostgreSQL: a session logged
in as the plugin's role). Every write is audited: by the plugin's own entries (`tx.audit`), or
else by one `plugin.write` entry (actor `plugin:<name>`) naming the tables and the rows changed,
never the values.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response

from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.domain.purposes import Policy
from consentry.host.gate import CoreGate
from consentry.http.writes import respond
from consentry.storage.database import Row, Transaction
from consentry.storage.plugin_wall import (
    RULE,
    grant_role,
    is_refused,
    password_of,
    role_of,
    sqlite_authorizer,
)
from consentry.storage.writer import WriteTx

T = TypeVar("T")

_WORD = re.compile(r"[a-z_][a-z0-9_]*")
_GRANTED = "plugin_roles"  # core.caches: the plugins whose role this core has granted


class ForeignTable(PermissionError):
    """A plugin's SQL reached for what is not its own (core data goes through the gate)."""


class ForeignIdentity(PermissionError):
    """A plugin tried to write an audit entry as another plugin, or as the system."""


class CoreContext:
    """`PluginContext` (and `RouteContext`) for one plugin: its gate, its own tables (and only
    those), its settings, its cache, the clock. Made by the host (`contexts`), one per plugin."""

    def __init__(self, core: Core, plugin: str) -> None:
        self._core = core
        self._plugin = plugin
        self._gate = CoreGate(core, plugin)
        self._settings = MappingProxyType(dict(core.plugins.settings.get(plugin, {})))
        self._cache: dict[str, Any] = {}
        tables = core.plugins.registry.tables
        self._own = frozenset(t._meta.tablename for owner, t in tables if owner == plugin)

    # -- SQL on the plugin's own tables ---------------------------------------------------------

    async def execute(self, sql: str, *args: Any) -> None:
        async def one(tx: OwnTx) -> None:
            await tx.execute(sql, *args)

        await self.write(one)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self._walled():
            if not self._core.db.is_postgres:
                return await self._core.db.fetch_authorized(
                    sqlite_authorizer(self._own, writes=False), sql, *args
                )
            async with self._session(readonly=True) as session:
                return await session.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def write(self, job: Callable[[OwnTx], Awaitable[T]]) -> T:
        """`job` in one transaction on the plugin's tables, its audit entries with it.

        SQLite: one transaction of the core's writer. PostgreSQL: a transaction of the plugin's
        own session; its audit entries are committed first, then the plugin's statements (a
        crash between leaves an entry for a write that did not happen, never a write without
        its entry)."""
        with self._walled():
            if not self._core.db.is_postgres:
                writes = sqlite_authorizer(self._own, writes=True)
                reads = sqlite_authorizer(self._own, writes=False)

                async def in_writer(tx: WriteTx) -> T:
                    own = OwnTx(
                        self,
                        tx.now,
                        lambda sql, *a: tx.execute_authorized(writes, sql, *a),
                        lambda sql, *a: tx.fetch_authorized(reads, sql, *a),
                    )
                    result = await job(own)
                    own.record(tx)
                    return result

                return await self._core.writer.submit(in_writer)
            async with self._session(readonly=False) as session:

                async def beside_writer(tx: WriteTx) -> T:
                    # a writer job, so an Idempotency-Key replay is answered before `job` runs
                    own = OwnTx(self, tx.now, session.execute_one, session.fetch)
                    result = await job(own)
                    own.record(tx)
                    return result

                # the writer commits the entries (and a stored answer) first; the plugin's
                # session commits when this block ends
                return await self._core.writer.submit(beside_writer)

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

    # -- what the plugin reads ----------------------------------------------------------------

    def now(self) -> datetime:
        return self._core.clock()

    # read-only: the host binds a context to its plugin, and nothing rebinds it
    @property
    def plugin(self) -> str:
        return self._plugin

    @property
    def gate(self) -> CoreGate:
        return self._gate

    @property
    def settings(self) -> Mapping[str, Any]:
        return self._settings

    @property
    def cache(self) -> dict[str, Any]:
        return self._cache

    @property
    def policy(self) -> Policy:
        return self._core.policy

    @property
    def own_tables(self) -> frozenset[str]:
        return self._own

    @property
    def template_filters(self) -> Mapping[str, Callable[..., Any]]:
        return {name: f for name, (_, f) in self._core.plugins.registry.filters.items()}

    async def respond(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        call: Callable[[], Awaitable[T]],
        render: Callable[[T], tuple[int, msgspec.Struct]],
    ) -> Response[Any]:
        return await respond(request, principal, call, render)


class OwnTx:
    """`PluginTx`: a transaction that reaches only the plugin's own tables; its audit entries
    are kept and recorded with it (`record`)."""

    def __init__(
        self,
        context: CoreContext,
        now: datetime,
        run: Callable[..., Awaitable[int]],
        read: Callable[..., Awaitable[list[Row]]],
    ) -> None:
        self._context = context
        self._now = now
        self._run = run
        self._read = read
        self._entries: list[tuple[str, str, str, dict[str, Any]]] = []
        self._tables: set[str] = set()
        self._rows = 0

    @property
    def now(self) -> datetime:
        return self._now

    async def execute(self, sql: str, *args: Any) -> None:
        self._rows += await self._run(sql, *args)
        self._tables |= set(_WORD.findall(sql.lower())) & self._context.own_tables

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return await self._read(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    def audit(self, actor: str, action: str, target: str, **details: Any) -> None:
        """An entry as the caller it names (a principal's actor) or as this plugin; never as
        another plugin or the system, nor with the gate's own `plugin.*` actions."""
        own = f"plugin:{self._context.plugin}"
        if (actor.startswith(("plugin:", "system:")) and actor != own) or action.startswith(
            "plugin."
        ):
            raise ForeignIdentity(
                f"plugin {self._context.plugin} may audit as the caller or as {own}, with its"
                f" own actions: not {actor!r} doing {action!r}"
            )
        self._entries.append((actor, action, target, details))

    def record(self, tx: WriteTx) -> None:
        """The plugin's entries; or, when it wrote none, one `plugin.write` for its statements."""
        for actor, action, target, details in self._entries:
            tx.audit(actor, action, target, **details)
        if not self._entries and self._tables:
            own = f"plugin:{self._context.plugin}"
            tx.audit(own, "plugin.write", own, tables=sorted(self._tables), rows=self._rows)


def contexts(core: Core) -> Callable[[str], CoreContext]:
    """The host's contexts for `core`: one per plugin, made on first use and kept (its cache
    lives as long as the core)."""
    made: dict[str, CoreContext] = {}

    def context_for(plugin: str) -> CoreContext:
        if plugin not in made:
            made[plugin] = CoreContext(core, plugin)
        return made[plugin]

    return context_for
