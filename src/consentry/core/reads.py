"""Reads of personal data by staff are audited in the same transaction as the read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.storage.database import Row
from consentry.storage.writer import WriteTx

T = TypeVar("T")


class Reader(Protocol):
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...


async def read(
    core: Core,
    actor: Principal | None,
    query: Callable[[Reader], Awaitable[T]],
    *,
    action: str,
    target: str,
    details: Callable[[T], dict[str, Any]] = lambda _: {},
) -> T:
    """Staff (API keys) read through the writer with an audit entry; customers and the system
    read their own data directly."""
    if actor is None or actor.kind != "key":
        return await query(core.db)

    async def job(tx: WriteTx) -> T:
        result = await query(tx)
        tx.audit(actor.actor, action, target, **details(result))
        return result

    return await core.writer.submit(job)
