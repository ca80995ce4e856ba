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

from consentry.plugins import Invalid, NotFound, PluginTx, Policy
from consentry_segments.filters import Segment, parse

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


async def insert(tx: PluginTx, name: str, purpose: str, raw: Any, actor: str) -> StoredSegment:
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


async def delete(tx: PluginTx, segment_id: UUID) -> bool:
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
