"""The core schema's migrations, applied in order by `storage.schema.migrate`, each once.

A migration is a module `mNNNN_<what>.py` in this package with `async def forwards(tx)`; it runs
inside migrate's transaction, so a failing one leaves the database as it was. DDL may sit beside
it in `mNNNN_<what>.sqlite.sql` and `mNNNN_<what>.postgres.sql`, run by `run_sql_file`. A shipped
migration is never edited: a change to the schema is the next migration."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import cast

from consentry.storage.database import Transaction

Forwards = Callable[[Transaction], Awaitable[None]]

_MODULE = re.compile(r"m(\d{4}_\w+)")


@dataclass(frozen=True)
class Migration:
    name: str  # "0001_baseline": applied in this order
    forwards: Forwards


def migrations() -> tuple[Migration, ...]:
    """Every migration of this package, oldest first."""
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if _MODULE.fullmatch(m.name))
    return tuple(
        Migration(name[1:], cast(Forwards, importlib.import_module(f"{__name__}.{name}").forwards))
        for name in found
    )


async def run_sql_file(tx: Transaction, module: str) -> None:
    """Run the statements of the module's SQL file for this engine, one per `;` line end."""
    engine = "postgres" if tx.postgres else "sqlite"
    package, _, name = module.rpartition(".")
    text = resources.files(package).joinpath(f"{name}.{engine}.sql").read_text("utf-8")
    for statement in statements(text):
        await tx.execute(statement)


def statements(text: str) -> list[str]:
    """SQL text as statements: `--` comment lines dropped, split where a line ends with `;`."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join([*lines, ""]).split(";\n") if s.strip()]
