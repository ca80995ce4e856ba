"""The code stays lint-clean and type-checked: ruff and strict mypy over src/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ruff_is_clean() -> None:
    """ruff finds nothing in src/."""
    result = _run("ruff", "check", "src")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    """mypy in strict mode finds no type errors in src/."""
    result = _run("mypy", "src")
    assert result.returncode == 0, result.stdout + result.stderr


ENTRY_MODULES = [
    "consentry.plugins",
    "consentry.host.context",
    "consentry.host.gate",
    "consentry.ledger.reactions",
    "consentry.ledger.consents",
    "consentry.core.runtime",
    "consentry.boot",
    "consentry.app",
    "consentry.testing",
]


def test_every_entry_module_imports_first() -> None:
    """No import cycle: each module a plugin or a tool may import first loads on its own."""
    for module in ENTRY_MODULES:
        result = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"import {module} first:\n{result.stderr[-2000:]}"


def test_import_rules_hold() -> None:
    """The import rules of docs/architecture.md (contracts in pyproject.toml): layers without
    cycles, a contract that imports nothing above domain, plugins that import only the contract."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


ROOMS = ("access", "customers", "ledger", "audit_log", "dsr", "host")


def test_rooms_meet_only_through_their_public_module() -> None:
    """A room imports another room's package (`consentry.customers`), never its modules: what a
    room offers the others is what its `__init__` exports."""
    import grimp

    graph = grimp.build_graph("consentry", exclude_type_checking_imports=True)
    reached = []
    for room in ROOMS:
        for importer in graph.find_descendants(f"consentry.{room}") | {f"consentry.{room}"}:
            for imported in graph.find_modules_directly_imported_by(importer):
                parts = imported.split(".")
                if len(parts) > 2 and parts[1] in ROOMS and parts[1] != room:
                    reached.append(f"{importer} -> {imported}")
    assert reached == []
