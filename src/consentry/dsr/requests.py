"""Data-subject requests: the workflow, its clocks, and the record of every step.

received -> verified -> in_progress -> completed, or rejected (with a reason) from any open
state. Clocks come from the regulation (`domain.deadlines`), counted from receipt. Every step is
an audit entry in the same transaction; free-text reasons are sealed with the customer's data
key, so an erasure shreds them with everything else.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from consentry.core.errors import Conflict, Forbidden, Invalid, NotFound
from consentry.core.pagination import Page, check_limit, decode_cursor, page_of
from consentry.core.principals import Principal, Scope
from consentry.core.runtime import Core
from consentry.crypto.envelope import DecryptionError, decrypt_json, encrypt_json
from consentry.domain.deadlines import Clocks, clocks, days_left, is_overdue
from consentry.storage.database import Row
from consentry.storage.writer import WriteTx

MAX_REASON = 2000


class RequestType(StrEnum):
    ACCESS = "access"
    PORTABILITY = "portability"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    RESTRICT = "restrict"
    OPT_OUT_SALE_SHARE = "opt_out_sale_share"


class RequestState(StrEnum):
    RECEIVED = "received"
    VERIFIED = "verified"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"

    @property
    def open(self) -> bool:
        return self not in (RequestState.COMPLETED, RequestState.REJECTED)


class Channel(StrEnum):
    STAFF = "staff"  # filed by an API key on the customer's behalf
    CUSTOMER = "customer"  # filed by the customer themselves
    BULK = "bulk"  # part of a bulk erasure


@dataclass(frozen=True, slots=True)
class DsrRequest:
    id: UUID
    subject_id: UUID
    external_id: str | None  # None once the customer is erased
    type: RequestType
    regulation: str
    state: RequestState
    channel: str
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


@dataclass(frozen=True, slots=True)
class RequestFilter:
    state: RequestState | None = None
    type: RequestType | None = None
    regulation: str | None = None
    external_id: str | None = None
    due_before: date | None = None  # due on or before this date
    overdue: bool | None = None
    open: bool | None = None


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _notes_aad(request_id: UUID) -> str:
    return f"dsr:{request_id}:notes"


async def _data_key(core: Core, subject_id: UUID) -> bytes | None:
    return await core.keys.get(str(subject_id))


def decode(row: Row, key: bytes | None) -> DsrRequest:
    rid = UUID(str(row["id"]))
    notes: dict[str, str] | None = {}
    if row["notes_enc"]:
        try:
            notes = decrypt_json(key, bytes(row["notes_enc"]), aad=_notes_aad(rid)) if key else None
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


_SELECT = (
    "SELECT r.*, s.external_id FROM dsr_requests r LEFT JOIN subjects s ON s.id = r.subject_id"
)

_RANKED = (
    "SELECT r.*, s.external_id,"
    " CASE WHEN r.state IN ('completed', 'rejected') THEN 1 ELSE 0 END AS closed_rank"
    " FROM dsr_requests r LEFT JOIN subjects s ON s.id = r.subject_id"
)


def check_reason(reason: str | None, what: str, *, required: bool) -> str | None:
    if reason is None or not reason.strip():
        if required:
            raise Invalid(f"say why: {what} needs a reason", field="reason")
        return None
    if len(reason) > MAX_REASON:
        raise Invalid(f"a reason is at most {MAX_REASON} characters", field="reason")
    return reason.strip()


# -- creating ----------------------------------------------------------------------------------


def _regulation_override(actor: Principal, derived: str, chosen: str) -> dict[str, Any]:
    """A request's clocks are its customer's region's regulation's. Filing under another (a
    compliance scope that says otherwise) is compliance's call, recorded in the audit entry."""
    if chosen == derived:
        return {}
    may = actor.kind == "system" or (
        actor.kind == "key" and Scope.COMPLIANCE_WRITE in actor.effective
    )
    if not may:
        raise Forbidden(
            f"this customer's region files requests under {derived}; only a compliance:write"
            f" key may file one under another regulation ({chosen}): leave `regulation` out",
            field="regulation",
        )
    return {"regulation_override": {"region_regulation": derived}}


async def create(
    core: Core,
    subject_id: UUID,
    region: str,
    kind: RequestType,
    actor: Principal,
    *,
    regulation: str | None = None,
    channel: Channel = Channel.STAFF,
    note: str | None = None,
    verified_by: str | None = None,
    on_created: Callable[[WriteTx, DsrRequest], Awaitable[DsrRequest]] | None = None,
) -> DsrRequest:
    """File a request; the regulation defaults to the customer's region's. `verified_by` files
    it already verified (the customer proved who they are by the way they asked).
    `on_created(tx, request)` runs in the same transaction (an opt-out applied at once)."""
    derived = core.policy.region(region).regulation
    regulation = regulation or derived
    override = _regulation_override(actor, derived, regulation)
    rules = core.policy.regulations.get(regulation)
    if rules is None:
        known = ", ".join(sorted(core.policy.regulations))
        raise Invalid(
            f"the policy sets no deadlines for regulation '{regulation}'; it knows {known}"
            " (declare it under 'regulations' in the policy)",
            field="regulation",
        )
    note = check_reason(note, "a note", required=False)
    key = await _data_key(core, subject_id)
    if key is None:
        raise Conflict("this customer's data key is gone: the customer was erased")

    async def job(tx: WriteTx) -> DsrRequest:
        rid = uuid.uuid4()
        times: Clocks = clocks(rules, tx.now, kind.value)
        state = RequestState.VERIFIED if verified_by else RequestState.RECEIVED
        history = [_step(tx, "received", actor, RequestState.RECEIVED)]
        if verified_by:
            history.append(_step(tx, "verified", actor, state, method=verified_by))
        notes = {"note": note} if note else {}
        await tx.execute(
            "INSERT INTO dsr_requests (id, subject_id, type, regulation, state, channel,"
            " received_at, acknowledge_by, respond_by, extended_to, due_on, acknowledged_at,"
            " updated_at, notes_enc, history, result)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, '{}')",
            rid,
            subject_id,
            kind.value,
            regulation,
            state.value,
            channel.value,
            tx.now,
            times.acknowledge_by.isoformat() if times.acknowledge_by else None,
            times.respond_by.isoformat(),
            times.respond_by.isoformat(),
            tx.now if channel is Channel.CUSTOMER else None,  # the answer is the confirmation
            tx.now,
            encrypt_json(key, notes, aad=_notes_aad(rid)) if notes else None,
            json.dumps(history),
        )
        tx.audit(
            actor.actor,
            "dsr.received",
            f"subject:{subject_id}",
            request=str(rid),
            type=kind.value,
            regulation=regulation,
            channel=channel.value,
            due=times.respond_by.isoformat(),
            **({"verified_by": verified_by} if verified_by else {}),
            **override,
        )
        request = await _load(tx, rid, key)
        if on_created is not None:
            request = await on_created(tx, request)
        return request

    return await core.writer.submit(job)


def _step(
    tx: WriteTx, action: str, actor: Principal, state: RequestState, **extra: Any
) -> dict[str, Any]:
    return {
        "at": tx.stamp().isoformat(),
        "action": action,
        "actor": actor.actor,
        "state": state.value,
        **extra,
    }


async def _load(tx: WriteTx | Any, request_id: UUID, key: bytes | None) -> DsrRequest:
    row = await tx.fetchrow(_SELECT + " WHERE r.id = ?", request_id)
    if row is None:
        raise NotFound(f"no request with id {request_id}")
    return decode(row, key)


# -- reading -----------------------------------------------------------------------------------


def parse_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(f"no request with id '{text}' (request ids are UUIDs)") from None


async def get(core: Core, request_id: UUID, actor: Principal | None = None) -> DsrRequest:
    """One request; a staff read is audited (its notes may name the customer's reasons)."""
    row = await core.db.fetchrow(_SELECT + " WHERE r.id = ?", request_id)
    if row is None:
        raise NotFound(f"no request with id {request_id}")
    request = decode(row, await _data_key(core, UUID(str(row["subject_id"]))))
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


# -- steps -------------------------------------------------------------------------------------


async def step(
    core: Core,
    request_id: UUID,
    action: str,
    actor: Principal,
    *,
    reason: str | None = None,
    method: str | None = None,
    result: dict[str, Any] | None = None,
    expect: tuple[RequestState, ...] | None = None,
    details: dict[str, Any] | None = None,
) -> DsrRequest:
    """One step of the workflow, checked against the request's state in the same transaction.

    Actions: verify (method), acknowledge, extend (reason), reject (reason), start, complete
    (result), fail (reason: the request stays in progress, the failure is on record)."""
    row = await core.db.fetchrow("SELECT subject_id FROM dsr_requests WHERE id = ?", request_id)
    if row is None:
        raise NotFound(f"no request with id {request_id}")
    key = await _data_key(core, UUID(str(row["subject_id"])))

    async def job(tx: WriteTx) -> DsrRequest:
        return await step_in(
            core,
            tx,
            request_id,
            action,
            actor,
            key,
            reason=reason,
            method=method,
            result=result,
            expect=expect,
            details=details,
        )

    return await core.writer.submit(job)


async def step_in(
    core: Core,
    tx: WriteTx,
    request_id: UUID,
    action: str,
    actor: Principal,
    key: bytes | None,
    *,
    reason: str | None = None,
    method: str | None = None,
    result: dict[str, Any] | None = None,
    expect: tuple[RequestState, ...] | None = None,
    details: dict[str, Any] | None = None,
) -> DsrRequest:
    """`step` inside a transaction that does more (an erasure completes its request)."""
    current = await _load(tx, request_id, key)
    if expect is not None and current.state not in expect:
        wanted = " or ".join(s.value for s in expect)
        raise Conflict(f"the request is {current.state.value}; this needs it {wanted}")
    changes, found = _apply(core, tx, current, action, reason=reason, method=method)
    details = {**found, **(details or {})}  # no personal data: it goes to the audit log
    state = RequestState(changes.get("state", current.state.value))
    history = [*current.history, _step(tx, _PAST[action], actor, state, **details)]
    notes = dict(current.notes or {})
    if reason and action in ("extend", "reject", "fail", "complete"):
        notes[f"{action}_reason"] = reason
    sealed = encrypt_json(key, notes, aad=_notes_aad(request_id)) if key and notes else None
    merged = {**current.result, **(result or {})}
    sets = "".join(f"{column} = ?, " for column in changes)
    await tx.execute(
        f"UPDATE dsr_requests SET {sets}history = ?, result = ?,"
        " notes_enc = COALESCE(?, notes_enc), updated_at = ? WHERE id = ?",
        *changes.values(),
        json.dumps(history),
        json.dumps(merged, sort_keys=True, default=str),
        sealed,
        tx.now,
        request_id,
    )
    tx.audit(
        actor.actor,
        f"dsr.{_PAST[action]}",
        f"subject:{current.subject_id}",
        request=str(request_id),
        type=current.type.value,
        state=state.value,
        **details,
    )
    return await _load(tx, request_id, key)


_PAST = {
    "verify": "verified",
    "acknowledge": "acknowledged",
    "extend": "extended",
    "reject": "rejected",
    "start": "started",
    "complete": "completed",
    "fail": "failed",
}


def _apply(
    core: Core, tx: WriteTx, r: DsrRequest, action: str, *, reason: str | None, method: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(column changes, audit details) for one step, or the error that explains why not."""
    if action not in _PAST:
        raise Invalid(f"unknown step '{action}'")
    if not r.state.open:
        raise Conflict(
            f"the request is already {r.state.value} (on {r.closed_at:%Y-%m-%d});"
            " file a new request if the customer asks again"
        )
    if action == "verify":
        if r.state is not RequestState.RECEIVED:
            raise Conflict(f"the request is already {r.state.value}; it was verified before")
        if not method:
            raise Invalid("say how the customer's identity was verified", field="method")
        return {"state": RequestState.VERIFIED.value}, {"method": method}
    if action == "acknowledge":
        if r.acknowledged_at is not None:
            raise Conflict(f"receipt was already acknowledged on {r.acknowledged_at:%Y-%m-%d}")
        return {"acknowledged_at": tx.now}, {}
    if action == "extend":
        return _extend(core, tx, r, reason)
    if action == "reject":
        check_reason(reason, "rejecting a request", required=True)
        return {"state": RequestState.REJECTED.value, "closed_at": tx.now}, {}
    if action == "start":
        if r.state is RequestState.RECEIVED:
            raise Conflict("verify the customer's identity first (POST /v1/requests/{id}/verify)")
        return {"state": RequestState.IN_PROGRESS.value}, {}
    if action == "complete":
        if r.state is not RequestState.IN_PROGRESS:
            raise Conflict(f"the request is {r.state.value}; only a request in progress completes")
        return {"state": RequestState.COMPLETED.value, "closed_at": tx.now}, {}
    # fail: stays in progress; the why is in the sealed notes, the audit names no one
    return {}, {}


def _extend(
    core: Core, tx: WriteTx, r: DsrRequest, reason: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    rules = core.policy.regulations.get(r.regulation)
    if r.extended_at is not None:
        raise Conflict(
            f"the deadline was already extended on {r.extended_at:%Y-%m-%d} to"
            f" {r.extended_to}; {r.regulation} allows one extension"
        )
    if rules is None or rules.extension is None:
        raise Conflict(f"regulation {r.regulation!r} allows no extension (see the policy)")
    times = clocks(rules, r.received_at, r.type.value)
    if times.extended_to is None:
        raise Conflict(f"{r.regulation} allows no extension for a {r.type.value} request")
    if is_overdue(r.respond_by, tx.now):
        raise Conflict(
            f"the original deadline ({r.respond_by}) has passed; an extension must be decided"
            " and told to the customer before it"
        )
    check_reason(reason, "an extension (the customer must be told why)", required=True)
    return (
        {
            "extended_to": times.extended_to.isoformat(),
            "due_on": times.extended_to.isoformat(),
            "extended_at": tx.now,
        },
        {"extended_to": times.extended_to.isoformat()},
    )
