"""What the core hands a plugin when it calls one of its hooks or one of its routes: a context
bound, by the host, to that plugin alone (its name, gate, tables, settings and cache)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
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
from consentry.storage.tables import CORE_TABLES
from consentry.storage.writer import WriteTx

T = TypeVar("T")

_STRING = re.compile(r"'(?:[^']|'')*'")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ForeignTable(PermissionError):
    """A plugin's SQL named a table that is not its own (core data goes through the gate)."""


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
        self._own = {t._meta.tablename for owner, t in tables if owner == plugin}
        self._known = {t._meta.tablename for t in CORE_TABLES} | {
            t._meta.tablename for _, t in tables
        }

    def _check(self, sql: str) -> None:
        named = {w.lower() for w in _NAME.findall(_STRING.sub("''", sql))}
        foreign = sorted((named & self._known) - self._own)
        if foreign:
            raise ForeignTable(
                f"plugin {self.plugin} may use only its own tables, not {', '.join(foreign)}:"
                " customer data comes through context.gate"
            )

    async def execute(self, sql: str, *args: Any) -> None:
        self._check(sql)

        async def job(tx: WriteTx) -> None:
            await tx.execute(sql, *args)

        await self._core.writer.submit(job)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self._check(sql)
        return await self._core.db.fetch(sql, *args)

    def now(self) -> datetime:
        return self._core.clock()

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def write(self, job: Callable[[OwnTx], Awaitable[T]]) -> T:
        async def run(tx: WriteTx) -> T:
            return await job(OwnTx(self, tx))

        return await self._core.writer.submit(run)

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
    """`PluginTx`: a writer transaction that reaches only the plugin's own tables."""

    def __init__(self, context: CoreContext, tx: WriteTx) -> None:
        self._context = context
        self._tx = tx

    @property
    def now(self) -> datetime:
        return self._tx.now

    async def execute(self, sql: str, *args: Any) -> None:
        self._context._check(sql)
        await self._tx.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self._context._check(sql)
        return await self._tx.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        self._context._check(sql)
        return await self._tx.fetchrow(sql, *args)

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
        self._tx.audit(actor, action, target, **details)


def contexts(core: Core) -> Callable[[str], CoreContext]:
    """The host's contexts for `core`: one per plugin, made on first use and kept (its cache
    lives as long as the core)."""
    made: dict[str, CoreContext] = {}

    def context_for(plugin: str) -> CoreContext:
        if plugin not in made:
            made[plugin] = CoreContext(core, plugin)
        return made[plugin]

    return context_for
