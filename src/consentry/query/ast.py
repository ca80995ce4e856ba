"""Filters over customers, as a tree: what a set-based plugin (segments) asks the gate for.

The gate compiles the tree to SQL (`consentry.query.sql`), adds the consent condition for the
purpose (`consentry.query.consent_sql`) and runs it; a plugin never writes SQL over core tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Condition:
    """`source` is "attr" (customer attributes) or "prop" (event properties). `value` depends on
    `op`: a scalar; a tuple of strings and numbers (`in`); None (`exists`); days (time windows);
    an aware datetime (`before`, `after`)."""

    source: str
    name: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class EventCount:
    name: str
    where: tuple[Condition, ...]
    last_days: int | None
    op: str
    value: int


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = And | Or | Not | Condition | EventCount
