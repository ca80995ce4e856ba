"""Route modules are thin: none imports another route module, and none queries the database
(helpers they share live in non-route modules such as `ledger.routes.params`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import consentry

SRC = Path(consentry.__file__).parent
ROUTE_MODULES = sorted(
    p
    for p in [*SRC.glob("*/routes.py"), *SRC.glob("*/routes/*.py")]
    if p.name not in ("__init__.py", "params.py")
)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def module_name(path: Path) -> str:
    return ".".join(("consentry", *path.relative_to(SRC).with_suffix("").parts))


ROUTE_NAMES = {module_name(p) for p in ROUTE_MODULES}


def test_there_are_route_modules() -> None:
    assert len(ROUTE_MODULES) >= 8


@pytest.mark.parametrize("path", ROUTE_MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_a_route_module_imports_no_other(path: Path) -> None:
    others = sorted(imported(path) & ROUTE_NAMES - {module_name(path)})
    assert others == [], f"{path.relative_to(SRC)} imports route modules {others}"


@pytest.mark.parametrize(
    "path", sorted(SRC.glob("ledger/routes/*.py")), ids=lambda p: str(p.relative_to(SRC))
)
def test_a_ledger_route_module_queries_nothing(path: Path) -> None:
    """The database is the services' business: no `core.db` and no SQL in a ledger route."""
    text = path.read_text()
    assert "core.db" not in text and "SELECT " not in text
