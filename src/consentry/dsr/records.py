"""A data-subject request as stored: the record, and reading one back.

Free-text notes are sealed with the customer's data key (an erasure shreds them with everything
else); a record whose key is gone reads with `notes` None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from consentry.core.runtime import Core
from consentry.crypto.envelope import DecryptionError, decrypt_json
from consentry.domain.deadlines import days_left, is_overdue
from consentry.domain.errors import NotFound
from consentry.domain.request_workflow import RequestState, RequestType
from consentry.storage.database import Database, Row
from consentry.storage.writer import WriteTx

SELECT = "SELECT r.*, s.external_id FROM dsr_requests r LEFT JOIN subjects s ON s.id = r.subject_id"


@dataclass(frozen=True, slots=True)
class DsrRequest:
    id: UUID
    subject_id: UUID
    external_id: str | None  # None once the customer is erased
    type: RequestType
    regulation: str
    state: RequestState
    channel: str  # how it came in: a RequestOrigin
    received_at: datetime
    acknowledge_by: date | None
    respond_by: date
    extended_to: date | None
    due_on: date
    acknowledged_at: datetime | None
    extended_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime
    notes: dict[str, str] | None  # None: sealed with a key that is gone (erased)
    history: list[dict[str, Any]]
    result: dict[str, Any]

    def days_left(self, now: datetime) -> int | None:
        return days_left(self.due_on, now) if self.state.open else None

    def overdue(self, now: datetime) -> bool:
        return self.state.open and is_overdue(self.due_on, now)

    def acknowledgement_overdue(self, now: datetime) -> bool:
        return (
            self.acknowledge_by is not None
            and self.acknowledged_at is None
            and is_overdue(self.acknowledge_by, now)
        )


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def notes_aad(request_id: UUID) -> str:
    return f"dsr:{request_id}:notes"


async def data_key(core: Core, subject_id: UUID) -> bytes | None:
    return await core.keys.get(str(subject_id))


def decode(row: Row, key: bytes | None) -> DsrRequest:
    rid = UUID(str(row["id"]))
    notes: dict[str, str] | None = {}
    if row["notes_enc"]:
        try:
            notes = decrypt_json(key, bytes(row["notes_enc"]), aad=notes_aad(rid)) if key else None
        except DecryptionError:
            notes = None
    return DsrRequest(
        id=rid,
        subject_id=UUID(str(row["subject_id"])),
        external_id=row.get("external_id"),
        type=RequestType(row["type"]),
        regulation=row["regulation"],
        state=RequestState(row["state"]),
        channel=row["channel"],
        received_at=row["received_at"],
        acknowledge_by=_date(row["acknowledge_by"]),
        respond_by=date.fromisoformat(row["respond_by"]),
        extended_to=_date(row["extended_to"]),
        due_on=date.fromisoformat(row["due_on"]),
        acknowledged_at=row["acknowledged_at"],
        extended_at=row["extended_at"],
        closed_at=row["closed_at"],
        updated_at=row["updated_at"],
        notes=notes,
        history=json.loads(row["history"] or "[]"),
        result=json.loads(row["result"] or "{}"),
    )


async def load(db: Database | WriteTx, request_id: UUID, key: bytes | None) -> DsrRequest:
    """One request read through `db` (the database, or a write transaction)."""
    row = await db.fetchrow(SELECT + " WHERE r.id = ?", request_id)
    if row is None:
        raise NotFound(f"no request with id {request_id}")
    return decode(row, key)
