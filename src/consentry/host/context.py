"""What the core hands a plugin when it calls one of its hooks."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from consentry.core.runtime import Core
from consentry.host.gate import CoreGate
from consentry.storage.tables import CORE_TABLES
from consentry.storage.writer import WriteTx

_STRING = re.compile(r"'(?:[^']|'')*'")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ForeignTable(PermissionError):
    """A plugin's SQL named a table that is not its own (core data goes through the gate)."""


class CoreContext:
    """`PluginContext` for one plugin: its gate, its own tables (and only those), the clock."""

    def __init__(self, core: Core, plugin: str) -> None:
        self._core = core
        self.plugin = plugin
        self.gate = CoreGate(core, plugin)
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
