"""Segment definitions (the plugin's own table) and membership queries over the core tables.

Membership is evaluated at query time, never cached: the consent condition is part of every
query, so a withdrawal takes effect on the next read and the plugin holds no personal data.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from piccolo.columns import UUID as UUIDColumn
from piccolo.columns import Text, Timestamptz, Varchar
from piccolo.table import Table

from consentry.domain.policy import Policy
from consentry.services.errors import Invalid, NotFound
from consentry.storage.writer import WriteTx
from consentry_segments.consent_sql import consent_condition
from consentry_segments.filters import Segment, parse
from consentry_segments.sql import compile_filter, subjects_from

MAX_NAME = 200


class SegmentTable(Table, tablename="segments_definitions"):
    id = UUIDColumn(primary_key=True)
    name = Varchar(length=MAX_NAME)
    purpose = Varchar(length=100)
    definition = Text()  # the filter, as JSON
    created_by = Varchar(length=100)
    created_at = Timestamptz()


class Reader(Protocol):
    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class StoredSegment:
    id: UUID
    name: str
    purpose: str
    filter: Any
    created_by: str
    created_at: datetime


def check_name(name: str) -> str:
    if not name.strip() or len(name) > MAX_NAME or "\x00" in name:
        raise Invalid(f"a segment name is 1 to {MAX_NAME} characters", field="name")
    return name


def _stored(row: dict[str, Any]) -> StoredSegment:
    return StoredSegment(
        id=UUID(str(row["id"])),
        name=row["name"],
        purpose=row["purpose"],
        filter=json.loads(row["definition"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


# -- definitions -------------------------------------------------------------------------------


async def insert(tx: WriteTx, name: str, purpose: str, raw: Any, actor: str) -> StoredSegment:
    segment = StoredSegment(uuid.uuid4(), name, purpose, raw, actor, tx.now)
    await tx.execute(
        "INSERT INTO segments_definitions (id, name, purpose, definition, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        segment.id,
        name,
        purpose,
        json.dumps(raw, sort_keys=True, ensure_ascii=False),
        actor,
        tx.now,
    )
    return segment


async def get(reader: Reader, segment_id: UUID) -> StoredSegment:
    rows = await reader.fetch("SELECT * FROM segments_definitions WHERE id = ?", segment_id)
    if not rows:
        raise NotFound(f"no segment {segment_id}")
    return _stored(rows[0])


async def list_all(reader: Reader, after: UUID | None, limit: int) -> list[StoredSegment]:
    if after is None:
        rows = await reader.fetch(
            "SELECT * FROM segments_definitions ORDER BY id LIMIT ?", limit + 1
        )
    else:
        rows = await reader.fetch(
            "SELECT * FROM segments_definitions WHERE id > ? ORDER BY id LIMIT ?", after, limit + 1
        )
    return [_stored(r) for r in rows]


async def delete(tx: WriteTx, segment_id: UUID) -> bool:
    found = await tx.fetch("SELECT id FROM segments_definitions WHERE id = ?", segment_id)
    if not found:
        return False
    await tx.execute("DELETE FROM segments_definitions WHERE id = ?", segment_id)
    return True


def revalidate(policy: Policy, stored: StoredSegment) -> Segment:
    """A stored segment under today's policy (an attribute may have become sensitive)."""
    try:
        return parse(policy, stored.purpose, stored.filter)
    except Invalid as exc:
        raise Invalid(
            f"segment {stored.id} is no longer valid under the current policy: {exc.detail}",
            field=exc.field,
        ) from None


# -- membership --------------------------------------------------------------------------------


def membership_sql(
    policy: Policy, segment: Segment, *, postgres: bool, now: datetime
) -> tuple[str, list[Any]]:
    """`<consent condition> AND <filter>` on `sql.subjects_from` (`s` is the subject), with
    its bound values."""
    consent = consent_condition(policy, segment.purpose, postgres=postgres, now=now)
    compiled = compile_filter(segment.root, postgres=postgres, now=now)
    return f"{consent.sql} AND {compiled.sql}", [*consent.params, *compiled.params]


async def count(
    reader: Reader, policy: Policy, segment: Segment, *, postgres: bool, now: datetime
) -> int:
    where, params = membership_sql(policy, segment, postgres=postgres, now=now)
    source = subjects_from(postgres=postgres)
    rows = await reader.fetch(f"SELECT COUNT(*) AS n FROM {source} WHERE {where}", *params)
    return int(rows[0]["n"])


async def members(
    reader: Reader,
    policy: Policy,
    segment: Segment,
    *,
    postgres: bool,
    now: datetime,
    after: UUID | None,
    limit: int,
) -> list[UUID]:
    """Pseudonymous subject ids, in id order, `limit + 1` at most (the extra one: more pages)."""
    where, params = membership_sql(policy, segment, postgres=postgres, now=now)
    if after is not None:
        where += " AND s.id > ?"
        params.append(after)
    rows = await reader.fetch(
        f"SELECT s.id FROM {subjects_from(postgres=postgres)} WHERE {where} ORDER BY s.id LIMIT ?",
        *params,
        limit + 1,
    )
    return [UUID(str(r["id"])) for r in rows]


async def is_member(
    reader: Reader,
    policy: Policy,
    segment: Segment,
    subject_id: UUID,
    *,
    postgres: bool,
    now: datetime,
) -> bool:
    where, params = membership_sql(policy, segment, postgres=postgres, now=now)
    source = subjects_from(postgres=postgres)
    rows = await reader.fetch(
        f"SELECT s.id FROM {source} WHERE s.id = ? AND {where}", subject_id, *params
    )
    return bool(rows)
