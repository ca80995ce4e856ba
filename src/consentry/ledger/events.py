"""Customer events (name, time, properties): ingested singly or in batches, read with filters."""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from consentry import customers
from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.customers import check_external_id
from consentry.domain.errors import Invalid, NotFound
from consentry.domain.pagination import Page, check_limit, decode_time_cursor, page_of, time_key
from consentry.ledger import reactions
from consentry.plugins.types import CustomerEvent
from consentry.storage.writer import WriteTx

EVENT_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,99}$")
MAX_BATCH = 1000
MAX_PROPERTIES_BYTES = 16_384


@dataclass(frozen=True, slots=True)
class EventIn:
    external_id: str
    name: str
    occurred_at: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: UUID
    name: str
    occurred_at: datetime
    received_at: datetime
    properties: dict[str, Any]


def _validate(events: list[EventIn]) -> None:
    if not events:
        raise Invalid("give at least one event", field="events")
    if len(events) > MAX_BATCH:
        raise Invalid(f"at most {MAX_BATCH} events per request", field="events")
    for i, e in enumerate(events):
        check_external_id(e.external_id)
        if not EVENT_NAME.match(e.name):
            raise Invalid(
                "event names are lowercase letters, digits, '_' and '.', starting with a"
                " letter, at most 100 characters",
                field=f"events[{i}].name",
            )
        if e.occurred_at is not None and e.occurred_at.tzinfo is None:
            raise Invalid(
                "occurred_at needs a time zone (e.g. 2026-01-31T12:00:00Z)",
                field=f"events[{i}].occurred_at",
            )
        if len(json.dumps(e.properties, default=str)) > MAX_PROPERTIES_BYTES:
            raise Invalid(
                f"properties may take at most {MAX_PROPERTIES_BYTES} bytes as JSON",
                field=f"events[{i}].properties",
            )


async def ingest(core: Core, events: list[EventIn], actor: Principal) -> list[StoredEvent]:
    """All or nothing: an unknown customer anywhere in the batch rejects the whole batch."""
    _validate(events)

    received: list[CustomerEvent] = []

    async def job(tx: WriteTx) -> list[StoredEvent]:
        received.clear()  # (a retried job starts again)
        ids = await _resolve_all(tx, {e.external_id for e in events})
        stored: list[StoredEvent] = []
        rows: list[tuple[Any, ...]] = []
        per_subject: dict[UUID, list[str]] = defaultdict(list)
        for e in events:
            sid = ids[e.external_id]
            s = StoredEvent(uuid.uuid4(), e.name, e.occurred_at or tx.now, tx.now, e.properties)
            stored.append(s)
            received.append(CustomerEvent(sid, s.name, s.occurred_at))
            rows.append(
                (
                    s.id,
                    sid,
                    s.name,
                    s.occurred_at,
                    s.received_at,
                    json.dumps(s.properties, sort_keys=True, default=str),
                )
            )
            per_subject[sid].append(e.name)
        await tx.executemany(
            "INSERT INTO events (id, subject_id, name, occurred_at, received_at, properties)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        for sid, names in per_subject.items():
            tx.audit(
                actor.actor,
                "events.ingested",
                f"subject:{sid}",
                count=len(names),
                names=sorted(set(names)),
            )
        return stored

    try:
        stored = await core.writer.submit(job)
    except UnknownCustomer as exc:
        missing = await customers.missing(core, exc.external_id)
        if isinstance(missing, NotFound):  # never known: say what to do
            raise NotFound(f"{missing.detail}; create it first") from None
        raise missing from None
    await reactions.events_received(core, received)
    return stored


class UnknownCustomer(Exception):
    """No customer has this external id (the caller tells erased from never known)."""

    def __init__(self, external_id: str) -> None:
        super().__init__(external_id)
        self.external_id = external_id


async def _resolve_all(tx: WriteTx, external_ids: set[str]) -> dict[str, UUID]:
    found: dict[str, UUID] = {}
    for external_id in sorted(external_ids):
        row = await tx.fetchrow("SELECT id FROM subjects WHERE external_id = ?", external_id)
        if row is None:
            raise UnknownCustomer(external_id)
        found[external_id] = UUID(str(row["id"]))
    return found


async def read(
    core: Core,
    subject_id: UUID,
    actor: Principal,
    *,
    name: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> Page[StoredEvent]:
    """Newest first; reading a customer's events is audited."""
    check_limit(limit)
    after = decode_time_cursor(cursor)
    sql = "SELECT * FROM events WHERE subject_id = ?"
    args: list[Any] = [subject_id]
    for clause, value in (
        ("name = ?", name),
        ("occurred_at >= ?", since),
        ("occurred_at < ?", until),
    ):
        if value is not None:
            sql += f" AND {clause}"
            args.append(value)
    if after:
        sql += " AND (occurred_at < ? OR (occurred_at = ? AND id < ?))"
        args += [after[0], after[0], after[1]]
    sql += " ORDER BY occurred_at DESC, id DESC LIMIT ?"

    async def job(tx: WriteTx) -> Page[StoredEvent]:
        rows = await tx.fetch(sql, *args, limit + 1)
        items = [
            StoredEvent(
                UUID(str(r["id"])),
                r["name"],
                r["occurred_at"],
                r["received_at"],
                json.loads(r["properties"] or "{}"),
            )
            for r in rows
        ]
        tx.audit(actor.actor, "events.read", f"subject:{subject_id}", count=min(len(items), limit))
        return page_of(items, limit, lambda e: time_key(e.occurred_at, e.id))

    return await core.writer.submit(job)
