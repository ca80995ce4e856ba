"""Data-subject requests: filing one, and taking a step of its workflow, each with its audit entry.

The workflow's rules are `domain.request_workflow` (received -> verified -> in_progress ->
completed, or rejected with a reason from any open state); here they are stored. Clocks come from
the regulation (`domain.deadlines`), counted from receipt. Every step is an audit entry in the
same transaction; free-text reasons are sealed with the customer's data key, so an erasure
shreds them with everything else. Reading requests is `dsr.queue`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from consentry.core.principals import Principal, Scope
from consentry.core.runtime import Core
from consentry.crypto.envelope import encrypt_json
from consentry.domain.deadlines import Clocks, clocks
from consentry.domain.errors import Conflict, Forbidden, Invalid, NotFound
from consentry.domain.request_workflow import (
    Effect,
    Refusal,
    RequestOrigin,
    RequestState,
    RequestType,
    Step,
    Transition,
    decide,
    reason_refusal,
)
from consentry.dsr.queue import RequestFilter, get, list_requests, parse_id
from consentry.dsr.records import DsrRequest, data_key, load, notes_aad
from consentry.storage.writer import WriteTx

__all__ = [  # the reading side is re-exported for the callers that import it from here
    "DsrRequest",
    "RequestFilter",
    "RequestOrigin",
    "RequestState",
    "RequestType",
    "check_reason",
    "create",
    "get",
    "list_requests",
    "parse_id",
    "refused",
    "step",
    "step_in",
]


def refused(refusal: Refusal) -> Conflict | Invalid:
    """A refusal of the workflow as the error the caller sees (409, or 422 naming the field)."""
    if refusal.conflict:
        return Conflict(refusal.message)
    return Invalid(refusal.message, field=refusal.field)


def check_reason(reason: str | None, what: str, *, required: bool) -> str | None:
    """The reason, stripped (None when none was given and none is required)."""
    refusal = reason_refusal(reason, what, required=required)
    if refusal is not None:
        raise refused(refusal)
    return reason.strip() if reason is not None and reason.strip() else None


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
    origin: RequestOrigin = RequestOrigin.STAFF,
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
    key = await data_key(core, subject_id)
    if key is None:
        raise Conflict("this customer's data key is gone: the customer was erased")

    async def job(tx: WriteTx) -> DsrRequest:
        rid = uuid.uuid4()
        times: Clocks = clocks(rules, tx.now, kind.value)
        state = RequestState.VERIFIED if verified_by else RequestState.RECEIVED
        history = [_history_entry(tx, "received", actor, RequestState.RECEIVED)]
        if verified_by:
            history.append(_history_entry(tx, "verified", actor, state, method=verified_by))
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
            origin.value,
            tx.now,
            times.acknowledge_by.isoformat() if times.acknowledge_by else None,
            times.respond_by.isoformat(),
            times.respond_by.isoformat(),
            tx.now if origin is RequestOrigin.CUSTOMER else None,  # the answer confirms it
            tx.now,
            encrypt_json(key, notes, aad=notes_aad(rid)) if notes else None,
            json.dumps(history),
        )
        tx.audit(
            actor.actor,
            "dsr.received",
            f"subject:{subject_id}",
            request=str(rid),
            type=kind.value,
            regulation=regulation,
            channel=origin.value,
            due=times.respond_by.isoformat(),
            **({"verified_by": verified_by} if verified_by else {}),
            **override,
        )
        request = await load(tx, rid, key)
        if on_created is not None:
            request = await on_created(tx, request)
        return request

    return await core.writer.submit(job)


def _history_entry(
    tx: WriteTx, action: str, actor: Principal, state: RequestState, **extra: Any
) -> dict[str, Any]:
    return {
        "at": tx.stamp().isoformat(),
        "action": action,
        "actor": actor.actor,
        "state": state.value,
        **extra,
    }


# -- steps -------------------------------------------------------------------------------------


async def step(
    core: Core,
    request_id: UUID,
    action: Step | str,
    actor: Principal,
    *,
    reason: str | None = None,
    method: str | None = None,
    result: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> DsrRequest:
    """One step of the workflow, checked against the request's state in the same transaction.

    Steps: verify (method), acknowledge, extend (reason), reject (reason), start, complete
    (result), fail (reason: the request stays in progress, the failure is on record)."""
    row = await core.db.fetchrow("SELECT subject_id FROM dsr_requests WHERE id = ?", request_id)
    if row is None:
        raise NotFound(f"no request with id {request_id}")
    key = await data_key(core, UUID(str(row["subject_id"])))

    async def job(tx: WriteTx) -> DsrRequest:
        return await step_in(
            core, tx, request_id, action, actor, key,
            reason=reason, method=method, result=result, details=details,
        )  # fmt: skip

    return await core.writer.submit(job)


async def step_in(
    core: Core,
    tx: WriteTx,
    request_id: UUID,
    action: Step | str,
    actor: Principal,
    key: bytes | None,
    *,
    reason: str | None = None,
    method: str | None = None,
    result: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> DsrRequest:
    """`step` inside a transaction that does more (an erasure completes its request)."""
    try:
        chosen = Step(action)
    except ValueError:
        raise Invalid(f"unknown step '{action}'") from None
    current = await load(tx, request_id, key)
    regulation = core.policy.regulations.get(current.regulation)
    decided = decide(
        current, chosen, now=tx.now, regulation=regulation, reason=reason, method=method
    )
    if isinstance(decided, Refusal):
        raise refused(decided)
    audited = {**decided.details, **(details or {})}  # no personal data: it goes to the audit
    past = decided.step.past
    history = [*current.history, _history_entry(tx, past, actor, decided.state, **audited)]
    notes = dict(current.notes or {})
    if reason and Effect.KEEP_REASON in decided.effects:
        notes[f"{decided.step.value}_reason"] = reason
    sealed = encrypt_json(key, notes, aad=notes_aad(request_id)) if key and notes else None
    merged = {**current.result, **(result or {})}
    changes = _columns(decided, tx)
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
        f"dsr.{past}",
        f"subject:{current.subject_id}",
        request=str(request_id),
        type=current.type.value,
        state=decided.state.value,
        **audited,
    )
    return await load(tx, request_id, key)


def _columns(transition: Transition, tx: WriteTx) -> dict[str, Any]:
    """The columns a transition changes, and their new values."""
    changes: dict[str, Any] = {"state": transition.state.value}
    if Effect.CLOSE in transition.effects:
        changes["closed_at"] = tx.now
    if Effect.ACKNOWLEDGE in transition.effects:
        changes["acknowledged_at"] = tx.now
    if Effect.EXTEND in transition.effects and transition.extended_to is not None:
        extended_to = transition.extended_to.isoformat()
        changes.update(extended_to=extended_to, due_on=extended_to, extended_at=tx.now)
    return changes
