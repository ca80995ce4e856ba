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
