"""The ledger row has one shape, `LedgerRecord`: the table's columns, the INSERT, the reading
back and the wire schema all follow its fields."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from consentry.core.principals import SYSTEM
from consentry.core.runtime import Core
from consentry.customers.records import CustomerUpsert, upsert
from consentry.http.schemas import wire
from consentry.ledger.records import COLUMNS, FIELDS, LedgerRecord, append, to_record
from consentry.ledger.schemas import LedgerRecordOut
from consentry.storage.tables import ConsentRecord
from consentry.storage.writer import WriteTx


def test_the_table_has_a_column_per_field_and_the_subject() -> None:
    columns = [c._meta.name for c in ConsentRecord._meta.columns]
    assert sorted(columns) == sorted(COLUMNS)


def test_the_wire_schema_has_the_fields_in_their_order() -> None:
    assert tuple(f.name for f in msgspec.structs.fields(LedgerRecordOut)) == FIELDS


async def test_a_record_reads_back_as_written(core: Core) -> None:
    """Every field survives the INSERT and the reading back, on either engine."""
    customer, _ = await upsert(core, CustomerUpsert("row-1", "EU"), SYSTEM)
    at = datetime(2031, 3, 1, 9, 0, 0, 123000, tzinfo=UTC)
    written = LedgerRecord(
        id=uuid.uuid4(),
        purpose="analytics",
        channel="email",
        decision="granted",
        legal_basis="consent",
        notice_version="2",
        notice_hash="sha256:ab",
        language="ja",
        policy_version="p-7",
        source="api",
        actor="key:k-1",
        recorded_at=at,
        expires_at=at + timedelta(days=30),
        evidence={"url": "https://example.test/form", "ip_hash": "cd"},
    )

    async def job(tx: WriteTx) -> None:
        await append(tx, customer.id, written)

    await core.writer.submit(job)
    row = await core.db.fetchrow("SELECT * FROM consent_records WHERE id = ?", written.id)
    assert row is not None and str(row["subject_id"]) == str(customer.id)
    read = to_record(row)
    assert read == written
    assert wire(read, LedgerRecordOut) == LedgerRecordOut(*dataclasses.astuple(written))
