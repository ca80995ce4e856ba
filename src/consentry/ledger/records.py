"""The ledger row: one shape (`LedgerRecord`), how one is made, written and read back.

The columns of `consent_records` are `subject_id` and `LedgerRecord`'s fields, in that order:
the INSERT and the reading below come from the fields, and `LedgerRecordOut` (the wire) and the
table (`storage.tables.ConsentRecord`) are checked against them by the tests.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.domain.consent import ConsentState, Decision, Source, state_key
from consentry.domain.purposes import Purpose
from consentry.plugins.types import ConsentChange
from consentry.storage.database import Row
from consentry.storage.writer import WriteTx


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    id: UUID
    purpose: str
    channel: str
    decision: str
    legal_basis: str
    notice_version: str
    notice_hash: str
    language: str
    policy_version: str
    source: str
    actor: str
    recorded_at: datetime
    expires_at: datetime | None
    evidence: dict[str, Any]  # stored as JSON text


FIELDS = tuple(f.name for f in fields(LedgerRecord))
COLUMNS = ("subject_id", *FIELDS)
_INSERT = (
    f"INSERT INTO consent_records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)
_UPSERT_STATE = (
    "INSERT INTO consent_state (key, subject_id, purpose, channel, decision, legal_basis,"
    " notice_version, source, record_id, recorded_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
    " decision = excluded.decision, legal_basis = excluded.legal_basis,"
    " notice_version = excluded.notice_version, source = excluded.source,"
    " record_id = excluded.record_id, recorded_at = excluded.recorded_at,"
    " expires_at = excluded.expires_at"
)


def new_record(
    core: Core,
    spec: Purpose,
    decision: Decision,
    source: Source,
    evidence: dict[str, Any],
    actor: Principal,
    now: datetime,
    *,
    channel: str = "",
    notice_version: str | None = None,
    language: str | None = None,
) -> LedgerRecord:
    """The row for a decision on purpose `spec`, under the notice version given (default: the
    current one) in the language given (default: the policy's first)."""
    notice = spec.notice(notice_version) if notice_version else spec.current_notice
    assert notice is not None
    language = language or core.policy.languages[0]
    expires = None
    if decision is Decision.GRANTED and spec.expires_after_days:
        expires = now + timedelta(days=spec.expires_after_days)
    return LedgerRecord(
        id=uuid.uuid4(),
        purpose=spec.name,
        channel=channel,
        decision=decision.value,
        legal_basis=spec.legal_basis.value,
        notice_version=notice.version,
        notice_hash=notice.content_hash(language),
        language=language,
        policy_version=core.policy.version,
        source=source.value,
        actor=actor.actor,
        recorded_at=now,
        expires_at=expires,
        evidence=evidence,
    )


async def append(tx: WriteTx, subject_id: UUID, r: LedgerRecord) -> None:
    """One ledger row and the matching current-state row: the only way consent is written."""
    await tx.execute(_INSERT, subject_id, *(_stored(r, name) for name in FIELDS))
    await tx.execute(
        _UPSERT_STATE,
        state_key(subject_id, r.purpose, r.channel),
        subject_id,
        r.purpose,
        r.channel,
        r.decision,
        r.legal_basis,
        r.notice_version,
        r.source,
        r.id,
        r.recorded_at,
        r.expires_at,
    )


def _stored(r: LedgerRecord, name: str) -> Any:
    value = getattr(r, name)
    return json.dumps(value, sort_keys=True) if name == "evidence" else value


def to_record(row: Row) -> LedgerRecord:
    """A `consent_records` row (SELECT *) as a LedgerRecord."""
    kept = {name: row[name] for name in FIELDS}
    kept["id"] = UUID(str(row["id"]))
    kept["evidence"] = json.loads(row["evidence"] or "{}")
    return LedgerRecord(**kept)


def to_state(row: Row) -> ConsentState:
    return ConsentState(
        purpose=row["purpose"],
        channel=row["channel"],
        decision=Decision(row["decision"]),
        legal_basis=row["legal_basis"],
        notice_version=row["notice_version"],
        source=row["source"],
        recorded_at=row["recorded_at"],
        expires_at=row["expires_at"],
        record_id=UUID(str(row["record_id"])),
    )


def state_of(r: LedgerRecord) -> ConsentState:
    """The state a record puts in force (what `append` writes to consent_state)."""
    return ConsentState(
        r.purpose,
        r.channel,
        Decision(r.decision),
        r.legal_basis,
        r.notice_version,
        r.source,
        r.recorded_at,
        r.expires_at,
        r.id,
    )


def change(subject_id: UUID, r: LedgerRecord) -> ConsentChange:
    """What plugins hear about a recorded row."""
    return ConsentChange(subject_id, r.purpose, r.channel, r.decision, r.source, r.recorded_at)
