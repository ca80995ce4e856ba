"""Reading consent: the current state, the ledger history, and the check (may I use this data?)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from consentry import customers
from consentry.core import reads
from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.domain.consent import ConsentState
from consentry.domain.decision import Verdict, evaluate
from consentry.domain.pagination import Page, check_limit, decode_time_cursor, page_of, time_key
from consentry.ledger.preferences import document_to_preferences
from consentry.ledger.records import LedgerRecord, to_record, to_state


async def current_state(
    core: Core, subject_id: UUID, actor: Principal | None = None
) -> list[ConsentState]:
    """The current decision per purpose and channel; a read by staff is audited."""

    async def query(db: reads.Reader) -> list[ConsentState]:
        sql = "SELECT * FROM consent_state WHERE subject_id = ? ORDER BY purpose, channel"
        return [to_state(r) for r in await db.fetch(sql, subject_id)]

    return await reads.read(
        core,
        actor,
        query,
        action="consents.read",
        target=f"subject:{subject_id}",
        details=lambda states: {"count": len(states)},
    )


async def history(
    core: Core,
    subject_id: UUID,
    *,
    purpose: str | None,
    cursor: str | None,
    limit: int,
    actor: Principal | None = None,
) -> Page[LedgerRecord]:
    """The ledger for one customer, oldest first; a read by staff is audited."""
    check_limit(limit)
    after = decode_time_cursor(cursor)
    sql = "SELECT * FROM consent_records WHERE subject_id = ?"
    args: list[Any] = [subject_id]
    if purpose:
        sql += " AND purpose = ?"
        args.append(purpose)
    if after:
        sql += " AND (recorded_at > ? OR (recorded_at = ? AND id > ?))"
        args += [after[0], after[0], after[1]]
    sql += " ORDER BY recorded_at, id LIMIT ?"

    async def query(db: reads.Reader) -> Page[LedgerRecord]:
        records = [to_record(r) for r in await db.fetch(sql, *args, limit + 1)]
        return page_of(records, limit, lambda r: time_key(r.recorded_at, r.id))

    return await reads.read(
        core,
        actor,
        query,
        action="consents.history.read",
        target=f"subject:{subject_id}",
        details=lambda page: {
            "count": len(page.items),
            **({"purpose": purpose} if purpose else {}),
        },
    )


# -- the check (hot path: one query) -------------------------------------------------------------

_CHECK_SQL = (
    "SELECT s.id, s.region, p.document, c.purpose, c.channel, c.decision, c.legal_basis,"
    " c.notice_version, c.source, c.record_id, c.recorded_at, c.expires_at"
    " FROM subjects s LEFT JOIN preference_state p ON p.subject_id = s.id"
    " LEFT JOIN consent_state c ON c.subject_id = s.id AND c.purpose = ?"
    " WHERE s.external_id = ?"
)


async def check(
    core: Core, external_id: str, purpose: str, channel: str | None = None, topic: str | None = None
) -> Verdict:
    rows = await core.db.fetch(_CHECK_SQL, purpose, external_id)
    if not rows:
        raise await customers.missing(core, external_id)
    first = rows[0]
    states = {(r["purpose"], r["channel"]): to_state(r) for r in rows if r["purpose"] is not None}
    prefs = document_to_preferences(json.loads(first["document"]) if first["document"] else {})
    return evaluate(
        core.policy,
        region=first["region"],
        purpose=purpose,
        channel=channel,
        topic=topic,
        states=states,
        preferences=prefs,
        now=core.clock(),
    )
