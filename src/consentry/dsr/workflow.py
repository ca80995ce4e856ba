"""Data-subject requests, end to end: filing, fulfilling, and bulk erasure.

What the API and the CLI call. The workflow's rules are `domain.request_workflow`, stored by
`dsr.requests`; the work itself is in `dsr.export` (access, portability) and `dsr.erasure`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.customers import resolve
from consentry.domain.consent import Source
from consentry.domain.errors import Gone, Invalid, NotFound, PluginFailed, ServiceError
from consentry.domain.request_workflow import (
    Refusal,
    RequestOrigin,
    RequestType,
    Step,
    before_fulfilling,
)
from consentry.dsr import erasure
from consentry.dsr import export as dsr_export
from consentry.dsr.queue import get
from consentry.dsr.records import DsrRequest
from consentry.dsr.requests import create, refused, step, step_in
from consentry.ledger import LedgerRecord, opt_out_of_sale
from consentry.storage.writer import WriteTx

MAX_BULK = 1000
CUSTOMER_TYPES = (RequestType.ACCESS, RequestType.PORTABILITY, RequestType.ERASURE)


async def file_request(
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
) -> DsrRequest:
    """File a request. An opt-out of sale/share applies at once, in the same transaction, and
    needs no identity verification (CCPA regulations § 7026(d))."""
    if kind is not RequestType.OPT_OUT_SALE_SHARE:
        return await create(
            core, subject_id, region, kind, actor,
            regulation=regulation, origin=origin, note=note, verified_by=verified_by,
        )  # fmt: skip

    async def opt_out_now(tx: WriteTx, request: DsrRequest) -> DsrRequest:
        return await _apply_opt_out(core, tx, request, actor)

    return await create(
        core, subject_id, region, kind, actor,
        regulation=regulation, origin=origin, note=note,
        verified_by=verified_by or "not required for an opt-out", on_created=opt_out_now,
    )  # fmt: skip


async def _apply_opt_out(
    core: Core, tx: WriteTx, request: DsrRequest, actor: Principal
) -> DsrRequest:
    records: list[LedgerRecord] = []
    await opt_out_of_sale(
        core, tx, request.subject_id, Source.DSR_REQUEST, {"request": str(request.id)}, actor,
        records,
    )  # fmt: skip
    await step_in(core, tx, request.id, Step.START, actor, None)
    return await step_in(
        core, tx, request.id, Step.COMPLETE, actor, None,
        result={"opt_out": {"withdrawn": sorted(r.purpose for r in records)}},
    )  # fmt: skip


async def fulfil(
    core: Core, request_id: UUID, actor: Principal, *, note: str | None = None
) -> DsrRequest:
    """Do what the request asks and complete it: build the export, erase, or (rectification,
    restriction: done by people) record the note saying what was done. A failure stays on the
    request's record; fulfilling again carries on where it stopped."""
    request = await get(core, request_id)
    steps = before_fulfilling(request.state, request.type, note)
    if isinstance(steps, Refusal):
        raise refused(steps)
    for first in steps:
        request = await step(core, request_id, first, actor)
    try:
        if request.type in (RequestType.ACCESS, RequestType.PORTABILITY):
            return await dsr_export.export(core, request, actor)
        if request.type is RequestType.ERASURE:
            return await erasure.erase(core, request, actor)
        if request.type is RequestType.OPT_OUT_SALE_SHARE:

            async def job(tx: WriteTx) -> DsrRequest:
                return await _apply_opt_out(core, tx, request, actor)

            return await core.writer.submit(job)
        return await step(
            core, request_id, Step.COMPLETE, actor, reason=note,
            result={"done": "by staff: what was done is in the request's note"},
        )  # fmt: skip
    except PluginFailed as exc:
        failed = ", ".join(sorted(exc.failures))
        await step(core, request_id, Step.FAIL, actor, reason=str(exc),
                   details={"failed_plugins": failed})  # fmt: skip
        raise


# -- bulk erasure ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    external_id: str
    status: str  # erased | already_erased | not_found | failed
    request_id: UUID | None = None
    detail: str = ""


async def erase_many(
    core: Core,
    external_ids: Sequence[str],
    actor: Principal,
    *,
    regulation: str | None = None,
    note: str | None = None,
    concurrency: int = 8,
    progress: Callable[[BulkOutcome], None] | None = None,
) -> list[BulkOutcome]:
    """Erase each customer; one failing does not stop the rest. Running it again with the same
    list finishes what failed and reports the done ones as already erased (nothing is redone)."""
    if not external_ids:
        raise Invalid("give at least one external_id", field="external_ids")
    if len(set(external_ids)) != len(external_ids):
        raise Invalid("each external_id may appear once", field="external_ids")
    gate = asyncio.Semaphore(concurrency)

    async def one(external_id: str) -> BulkOutcome:
        async with gate:
            outcome = await _erase_one(core, external_id, actor, regulation, note)
        if progress is not None:
            progress(outcome)
        return outcome

    return list(await asyncio.gather(*(one(x) for x in external_ids)))


async def _erase_one(
    core: Core, external_id: str, actor: Principal, regulation: str | None, note: str | None
) -> BulkOutcome:
    try:
        subject_id, region = await resolve(core, external_id)
    except Gone:
        return BulkOutcome(external_id, "already_erased")
    except NotFound as exc:
        return BulkOutcome(external_id, "not_found", detail=exc.detail)
    except ServiceError as exc:
        return BulkOutcome(external_id, "failed", detail=exc.detail)
    request_id: UUID | None = None
    try:
        request_id = await _open_erasure(core, subject_id)
        if request_id is None:
            request = await file_request(
                core, subject_id, region, RequestType.ERASURE, actor,
                regulation=regulation, origin=RequestOrigin.BULK, note=note,
                verified_by=f"bulk erasure by {actor.actor}",
            )  # fmt: skip
            request_id = request.id
        await fulfil(core, request_id, actor)
        return BulkOutcome(external_id, "erased", request_id)
    except (ServiceError, PluginFailed) as exc:
        detail = exc.detail if isinstance(exc, ServiceError) else str(exc)
        return BulkOutcome(external_id, "failed", request_id, detail)


async def _open_erasure(core: Core, subject_id: UUID) -> UUID | None:
    """An erasure request for this customer that a previous run left open, to carry on with."""
    row = await core.db.fetchrow(
        "SELECT id FROM dsr_requests WHERE subject_id = ? AND type = 'erasure'"
        " AND state IN ('verified', 'in_progress') ORDER BY received_at LIMIT 1",
        subject_id,
    )
    return UUID(str(row["id"])) if row else None
