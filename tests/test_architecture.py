"""docs/architecture.md stays true: every module it names exists, every room it lists is a
package, and every package of `consentry` is on the page."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import consentry

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
TEXT = DOC.read_text(encoding="utf-8")
MODULES = {m.name for m in pkgutil.iter_modules(consentry.__path__)}
PACKAGES = {m.name for m in pkgutil.iter_modules(consentry.__path__) if m.ispkg}


def _exists(dotted: str) -> bool:
    """`consentry.a.b.c`: the longest importable module prefix, and the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        try:
            if importlib.util.find_spec(module) is None:
                continue
        except ModuleNotFoundError:  # a parent is a module, not a package
            continue
        found: object = importlib.import_module(module)
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


def _named() -> list[str]:
    """Every `dotted.name` in backticks whose first part is one of Consentry's packages, and
    every module a table row names in parentheses after its package."""
    names = []
    for token in re.findall(r"`([a-z_][a-z_.]*[a-z_])`", TEXT):
        head = token.split(".")[0]
        if head == "consentry":
            names.append(token)
        elif "." in token and head in MODULES:
            names.append(f"consentry.{token}")
    for package, row in re.findall(r"^\| `consentry\.([a-z_]+)` \|(.*)$", TEXT, re.M):
        for inside in re.findall(r"\(([^)]*)\)", row):
            names += [f"consentry.{package}.{m}" for m in re.findall(r"`([a-z_]+)`", inside)]
    return sorted(set(names))


def test_every_module_the_page_names_exists() -> None:
    """A renamed or removed module fails here until the page says the new name."""
    names = _named()
    assert len(names) > 40, names  # the page names the layout, not a handful of words
    assert [n for n in names if not _exists(n)] == []


def test_every_package_is_on_the_page() -> None:
    """A new package of consentry gets its line on the page."""
    missing = [p for p in sorted(PACKAGES) if f"`consentry.{p}`" not in TEXT]
    assert missing == []
