"""Who matches a filter tree and may be used for a purpose: counted or listed, in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from consentry.domain.purposes import Policy
from consentry.query.ast import And, Condition, EventCount, Node, Not, Or
from consentry.query.consent_sql import consent_condition
from consentry.query.sql import compile_filter, subjects_from

EVENTS_CATEGORY = "behavior"  # events are behaviour data


class Reader(Protocol):
    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...


def problems(policy: Policy, purpose: str, root: Node) -> list[str]:
    """What in the tree the purpose may not use: unknown or sensitive attributes, attributes of
    categories the purpose does not use, events when it does not use behaviour data."""
    allowed = set(policy.purposes[purpose].categories)
    found: list[str] = []

    def walk(node: Node) -> None:
        if isinstance(node, And | Or):
            for item in node.items:
                walk(item)
        elif isinstance(node, Not):
            walk(node.item)
        elif isinstance(node, EventCount):
            if EVENTS_CATEGORY not in allowed:
                found.append(f"events are {EVENTS_CATEGORY} data, which {purpose} does not use")
        elif isinstance(node, Condition) and node.source == "attr":
            category = policy.category_of(node.name)
            if category is None:
                found.append(f"attribute {node.name!r} is not in the policy")
            elif policy.categories[category].sensitive:
                found.append(f"attribute {node.name!r} is sensitive ({category}): not matchable")
            elif category not in allowed:
                found.append(
                    f"attribute {node.name!r} is {category} data, which {purpose} does not use"
                )

    walk(root)
    return found


def membership_sql(
    policy: Policy, purpose: str, root: Node, *, postgres: bool, now: datetime
) -> tuple[str, list[Any]]:
    """`<consent condition> AND <filter>` on `subjects_from` (`s` is the subject)."""
    consent = consent_condition(policy, purpose, postgres=postgres, now=now)
    compiled = compile_filter(root, postgres=postgres, now=now)
    return f"{consent.sql} AND {compiled.sql}", [*consent.params, *compiled.params]


async def count(
    reader: Reader, policy: Policy, purpose: str, root: Node, *, postgres: bool, now: datetime
) -> int:
    where, params = membership_sql(policy, purpose, root, postgres=postgres, now=now)
    source = subjects_from(postgres=postgres)
    rows = await reader.fetch(f"SELECT COUNT(*) AS n FROM {source} WHERE {where}", *params)
    return int(rows[0]["n"])


async def members(
    reader: Reader,
    policy: Policy,
    purpose: str,
    root: Node,
    *,
    postgres: bool,
    now: datetime,
    after: UUID | None,
    limit: int,
) -> list[UUID]:
    """Pseudonymous subject ids in id order, `limit + 1` at most (the extra one: more pages)."""
    where, params = membership_sql(policy, purpose, root, postgres=postgres, now=now)
    if after is not None:
        where += " AND s.id > ?"
        params.append(after)
    rows = await reader.fetch(
        f"SELECT s.id FROM {subjects_from(postgres=postgres)} WHERE {where} ORDER BY s.id LIMIT ?",
        *params,
        limit + 1,
    )
    return [UUID(str(r["id"])) for r in rows]
