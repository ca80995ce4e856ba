"""Reading data-subject requests: one (a staff read is audited), or the compliance queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.domain.errors import NotFound
from consentry.domain.pagination import Page, check_limit, decode_cursor, page_of
from consentry.domain.request_workflow import RequestState, RequestType
from consentry.dsr.records import SELECT, DsrRequest, data_key, decode
from consentry.storage.writer import WriteTx

_RANKED = (
    "SELECT r.*, s.external_id,"
    " CASE WHEN r.state IN ('completed', 'rejected') THEN 1 ELSE 0 END AS closed_rank"
    " FROM dsr_requests r LEFT JOIN subjects s ON s.id = r.subject_id"
)


@dataclass(frozen=True, slots=True)
class RequestFilter:
    state: RequestState | None = None
    type: RequestType | None = None
    regulation: str | None = None
    external_id: str | None = None
    due_before: date | None = None  # due on or before this date
    overdue: bool | None = None
    open: bool | None = None


def parse_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(f"no request with id '{text}' (request ids are UUIDs)") from None


async def get(core: Core, request_id: UUID, actor: Principal | None = None) -> DsrRequest:
    """One request; a staff read is audited (its notes may name the customer's reasons)."""
    row = await core.db.fetchrow(SELECT + " WHERE r.id = ?", request_id)
    if row is None:
        raise NotFound(f"no request with id {request_id}")
    request = decode(row, await data_key(core, UUID(str(row["subject_id"]))))
    if actor is not None and actor.kind == "key":

        async def job(tx: WriteTx) -> None:
            tx.audit(
                actor.actor, "dsr.read", f"subject:{request.subject_id}", request=str(request_id)
            )

        await core.writer.submit(job)
    if actor is not None and actor.kind == "customer" and str(request.subject_id) != actor.id:
        raise NotFound(f"no request with id {request_id}")
    return request


async def list_requests(
    core: Core, flt: RequestFilter, *, cursor: str | None, limit: int
) -> Page[DsrRequest]:
    """Open requests first, by due date (so overdue ones lead), then closed ones."""
    check_limit(limit)
    today = core.clock().date().isoformat()
    sql = f"SELECT * FROM ({_RANKED}) q WHERE 1 = 1"
    args: list[Any] = []
    for clause, value in (
        ("state = ?", flt.state.value if flt.state else None),
        ("type = ?", flt.type.value if flt.type else None),
        ("regulation = ?", flt.regulation),
        ("external_id = ?", flt.external_id),
        ("due_on <= ?", flt.due_before.isoformat() if flt.due_before else None),
    ):
        if value is not None:
            sql += f" AND {clause}"
            args.append(value)
    if flt.overdue is not None:
        sql += " AND " + ("" if flt.overdue else "NOT ") + "(closed_rank = 0 AND due_on < ?)"
        args.append(today)
    if flt.open is not None:
        sql += " AND closed_rank = ?"
        args.append(0 if flt.open else 1)
    after = decode_cursor(cursor, 3)
    if after:
        sql += (
            " AND (closed_rank > ? OR (closed_rank = ? AND (due_on > ?"
            " OR (due_on = ? AND CAST(id AS TEXT) > ?))))"
        )
        args += [int(after[0]), int(after[0]), str(after[1]), str(after[1]), str(after[2])]
    sql += " ORDER BY closed_rank, due_on, CAST(id AS TEXT) LIMIT ?"
    rows = await core.db.fetch(sql, *args, limit + 1)
    keys = await core.keys.get_many({str(r["subject_id"]) for r in rows})
    items = [decode(r, keys.get(str(r["subject_id"]))) for r in rows]
    return page_of(
        items,
        limit,
        lambda r: (0 if r.state.open else 1, r.due_on.isoformat(), str(r.id)),
    )


async def list_customers_requests(
    core: Core, subject_id: UUID, *, cursor: str | None, limit: int
) -> Page[DsrRequest]:
    """The requests filed for one customer (the customer's own view of the queue)."""
    row = await core.db.fetchrow("SELECT external_id FROM subjects WHERE id = ?", subject_id)
    flt = RequestFilter(external_id=row["external_id"] if row else "")
    return await list_requests(core, flt, cursor=cursor, limit=limit)
