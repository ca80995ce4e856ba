"""How a command reaches the data: the root CLI builds an `Opener` from the settings and hands it
to every command (click's `ctx.obj`); an area's command opens what it needs through it, so no
area imports the composition root."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

from consentry.domain.errors import ServiceError

if TYPE_CHECKING:
    from consentry.core.runtime import Core
    from consentry.settings import Settings
    from consentry.storage.database import Database


class Opener(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def database_url(self) -> str:
        """The data store's URL (what worker processes connect to)."""
        ...

    def core(self, *, create: bool = False) -> AbstractAsyncContextManager[Core]:
        """The core, closed on the way out. `create=False`: raise `NoData` rather than make a
        data folder, secrets or tables."""
        ...

    def database(self) -> AbstractAsyncContextManager[Database]:
        """The existing data store alone (no secret needed), or `NoData`."""
        ...


def run_on_core(
    opener: Opener,
    run: Callable[[Core], Awaitable[int | None]],
    *,
    refused: Callable[[ServiceError], str] = str,
) -> int:
    """A command's work on the existing data's core (it creates none): its exit code (None: 0).
    A refusal of the service (`ServiceError`) goes to standard error, as `refused` says it, and
    exits 1."""

    async def main() -> int:
        async with opener.core(create=False) as core:
            try:
                return await run(core) or 0
            except ServiceError as exc:
                print(refused(exc), file=sys.stderr)
                return 1

    return asyncio.run(main())
