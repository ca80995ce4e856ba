"""Compiling a validated filter (`filters`) to a SQL condition on `subjects s`, for SQLite
(`json_extract`, `json_type`) or PostgreSQL (`->`, `->>`, `json_typeof` on `json` columns).

Every name and value is a bound parameter (`?`): the SQL text is built only from this module's
constants, so nothing a caller sends can change the statement. Values are bound as tokens first
(`Compiler.bind`) and numbered in text order at the end (`Compiler.finish`).

Every condition is two-valued (never NULL): a missing or differently typed value is simply
false, and `not` is the exact complement.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from consentry.query.ast import And, Condition, EventCount, Node, Not, Or

_SQL_OP = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}

# ISO-8601 times PostgreSQL may cast without raising; no '?' (it is the placeholder).
_PG_TIME = (
    "^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    "([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6}){0,1}){0,1}"
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]){0,1}){0,1}$"
)
_PG_ZONED = "(Z|[+-][0-9]{2}:[0-9]{2})$"
_TOKEN = re.compile("\x01([0-9]+)\x02")
_SQLITE_DATE = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"


# PostgreSQL stores attributes as `json` (text): every `->` would parse the whole document
# again. The query parses it once per row into `jsonb`, behind a fence (OFFSET 0) so the planner
# does not copy the cast into every use.
PG_ATTRIBUTES = "sa.attrs"
PG_FROM = "subjects s CROSS JOIN LATERAL (SELECT s.attributes::jsonb AS attrs OFFSET 0) sa"


def subjects_from(*, postgres: bool) -> str:
    """The FROM clause compiled filters run against (`s` is the subject)."""
    return PG_FROM if postgres else "subjects s"


@dataclass
class Compiled:
    sql: str
    params: list[Any] = field(default_factory=list)


class Compiler:
    """One compilation: the dialect, the time it is evaluated at, and the bound values so far."""

    def __init__(self, *, postgres: bool, now: datetime) -> None:
        self.postgres = postgres
        self.now = now
        self.values: list[Any] = []

    def bind(self, value: Any, *, exact: bool = False) -> str:
        """A token standing for `value` (numbers compared as JSON numbers go to PostgreSQL as
        `numeric`, unless `exact`: an integer column such as a count). `finish` turns tokens
        into `?` and lists the values in the order the text uses them, so a fragment may be
        built in any order and used more than once."""
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if self.postgres and not exact and number:
            value = Decimal(str(value))
        self.values.append(value)
        return f"\x01{len(self.values) - 1}\x02"

    def finish(self, sql: str) -> Compiled:
        params: list[Any] = []

        def placeholder(match: re.Match[str]) -> str:
            params.append(self.values[int(match.group(1))])
            return "?"

        return Compiled(_TOKEN.sub(placeholder, sql), params)

    # -- JSON access -------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return self.bind(f'$."{name}"') if not self.postgres else self.bind(name)

    def jtype(self, column: str, name: str) -> str:
        """The JSON type: SQLite 'text' | 'integer' | 'real' | 'true' | 'false' | 'null' ...;
        PostgreSQL 'string' | 'number' | 'boolean' | 'null' ... (NULL when absent)."""
        if self.postgres:
            typeof = "jsonb_typeof" if column == PG_ATTRIBUTES else "json_typeof"
            return f"{typeof}({column} -> {self._path(name)}::text)"
        return f"json_type({column}, {self._path(name)})"

    def jvalue(self, column: str, name: str) -> str:
        """SQLite: the SQL value; PostgreSQL: the value as text."""
        if self.postgres:
            return f"({column} ->> {self._path(name)}::text)"
        return f"json_extract({column}, {self._path(name)})"

    def jtime(self, column: str, name: str) -> str:
        """The value as a comparable time (SQLite: Julian day; PostgreSQL: timestamptz), or
        NULL when it is not an ISO-8601 time."""
        v = self.jvalue(column, name)
        if self.postgres:
            day_ok = (
                f"extract(day from make_date(substr({v}, 1, 4)::int,"
                f" substr({v}, 6, 2)::int, 1) + (substr({v}, 9, 2)::int - 1))"
                f" = substr({v}, 9, 2)::int"
            )
            cast = (
                f"CASE WHEN {v} ~ {self.bind(_PG_ZONED)} THEN {v}::timestamptz"
                f" ELSE {v}::timestamp AT TIME ZONE 'UTC' END"
            )
            return (
                f"(CASE WHEN {self.jtype(column, name)} = 'string'"
                f" AND {v} ~ {self.bind(_PG_TIME)}"
                f" THEN CASE WHEN {day_ok} THEN {cast} END END)"
            )
        return (
            f"(CASE WHEN {self.jtype(column, name)} = 'text'"
            f" AND {v} GLOB {self.bind(_SQLITE_DATE)}"
            f" AND date(julianday(substr({v}, 1, 10))) = substr({v}, 1, 10)"
            f" THEN julianday({v}) END)"
        )

    def time_value(self, when: datetime) -> str:
        if self.postgres:
            return f"{self.bind(when)}::timestamptz"
        return f"julianday({self.bind(when.isoformat())})"

    # -- nodes -------------------------------------------------------------------------------

    def node(self, node: Node) -> str:
        if isinstance(node, And):
            return (
                "(" + " AND ".join(self.node(n) for n in node.items) + ")"
                if node.items
                else ("TRUE")
            )
        if isinstance(node, Or):
            return "(" + " OR ".join(self.node(n) for n in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.node(node.item)})"
        if isinstance(node, EventCount):
            return self.event_count(node)
        if node.source == "prop":
            column = "e.properties"
        else:
            column = PG_ATTRIBUTES if self.postgres else "s.attributes"
        return f"COALESCE({self.condition(column, node)}, FALSE)"

    def condition(self, column: str, c: Condition) -> str:
        if c.op == "exists":
            return f"{self.jtype(column, c.name)} <> 'null'"
        if c.op == "in":
            strings = [v for v in c.value if isinstance(v, str)]
            numbers = [v for v in c.value if not isinstance(v, str)]
            parts = []
            if strings:
                parts.append(self._text(column, c.name, "IN", strings))
            if numbers:
                parts.append(self._number(column, c.name, "IN", numbers))
            return "(" + " OR ".join(parts) + ")"
        if c.op == "within_days":
            t = self.jtime(column, c.name)
            since = self.time_value(self.now - timedelta(days=c.value))
            return f"({t} >= {since} AND {t} <= {self.time_value(self.now)})"
        if c.op == "older_than_days":
            before = self.time_value(self.now - timedelta(days=c.value))
            return f"({self.jtime(column, c.name)} < {before})"
        if c.op in ("before", "after"):
            sign = "<" if c.op == "before" else ">"
            return f"({self.jtime(column, c.name)} {sign} {self.time_value(c.value)})"
        op = _SQL_OP[c.op]
        if isinstance(c.value, bool):
            return self._boolean(column, c.name, op, c.value)
        if isinstance(c.value, str):
            return self._text(column, c.name, op, [c.value])
        return self._number(column, c.name, op, [c.value])

    def _values(self, op: str, values: list[Any], cast: str = "") -> str:
        if op == "IN":
            return "(" + ", ".join(self.bind(v) + cast for v in values) + ")"
        return self.bind(values[0]) + cast

    def _text(self, column: str, name: str, op: str, values: list[str]) -> str:
        if self.postgres:
            return (
                f"({self.jtype(column, name)} = 'string' AND"
                f' {self.jvalue(column, name)} COLLATE "C" {op} {self._values(op, values)})'
            )
        return (
            f"({self.jtype(column, name)} = 'text' AND"
            f" {self.jvalue(column, name)} {op} {self._values(op, values)})"
        )

    def _number(self, column: str, name: str, op: str, values: list[Any]) -> str:
        if self.postgres:  # CASE: the cast runs only on numbers (AND has no evaluation order)
            return (
                f"(CASE WHEN {self.jtype(column, name)} = 'number' THEN"
                f" {self.jvalue(column, name)}::numeric {op}"
                f" {self._values(op, values, '::numeric')}"
                " ELSE FALSE END)"
            )
        return (
            f"({self.jtype(column, name)} IN ('integer', 'real') AND"
            f" {self.jvalue(column, name)} {op} {self._values(op, values)})"
        )

    def _boolean(self, column: str, name: str, op: str, value: bool) -> str:
        word = "true" if value else "false"
        if self.postgres:
            return (
                f"({self.jtype(column, name)} = 'boolean' AND"
                f" {self.jvalue(column, name)} {op} {self.bind(word)})"
            )
        return (
            f"({self.jtype(column, name)} IN ('true', 'false') AND"
            f" {self.jtype(column, name)} {op} {self.bind(word)})"
        )

    def event_count(self, n: EventCount) -> str:
        """Subjects are grouped by their matching events; a count that holds at zero (`< 5`,
        `= 0`) is written as "not among those whose non-zero count fails"."""
        where = [f"e.name = {self.bind(n.name)}"]
        if n.last_days is not None:
            since = self.now - timedelta(days=n.last_days)
            where.append(f"e.occurred_at >= {self.bind(since)}")
        where += [f"COALESCE({self.condition('e.properties', c)}, FALSE)" for c in n.where]
        op = _SQL_OP[n.op]
        holds_at_zero = _COMPARE[n.op](0, n.value)
        having = f"COUNT(*) {op} {self.bind(n.value, exact=True)}"
        grouped = (
            f"SELECT e.subject_id FROM events e WHERE {' AND '.join(where)}"
            f" GROUP BY e.subject_id HAVING {'NOT ' if holds_at_zero else ''}({having})"
        )
        if not holds_at_zero:
            return f"(s.id IN ({grouped}))"
        if self.postgres:  # an anti-join: NOT IN over a large set would not be hashed
            return f"(NOT EXISTS (SELECT 1 FROM ({grouped}) g WHERE g.subject_id = s.id))"
        return f"(s.id NOT IN ({grouped}))"


def compile_filter(root: Node, *, postgres: bool, now: datetime) -> Compiled:
    compiler = Compiler(postgres=postgres, now=now)
    return compiler.finish(compiler.node(root))
