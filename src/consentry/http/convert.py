"""Domain values to wire schemas (the data-subject requests'; every other area converts with
`schemas.wire`, next to its own wire schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from consentry.dsr.requests import DsrRequest
from consentry.dsr.workflow import BulkOutcome
from consentry.http import schemas as s


def dsr_request(r: DsrRequest, now: datetime) -> s.RequestOut:
    def day(d: Any) -> str | None:
        return d.isoformat() if d else None

    clocks = s.ClocksOut(
        due=r.due_on.isoformat(),
        days_left=r.days_left(now),
        overdue=r.overdue(now),
        respond_by=r.respond_by.isoformat(),
        extended_to=day(r.extended_to),
        acknowledge_by=day(r.acknowledge_by),
        acknowledged_at=r.acknowledged_at,
        acknowledgement_overdue=r.state.open and r.acknowledgement_overdue(now),
    )
    return s.RequestOut(
        id=r.id,
        external_id=r.external_id,
        type=r.type.value,
        regulation=r.regulation,
        state=r.state.value,
        channel=r.channel,
        received_at=r.received_at,
        clocks=clocks,
        extended_at=r.extended_at,
        closed_at=r.closed_at,
        notes=r.notes,
        history=r.history,
        result=r.result,
    )


def bulk(outcomes: list[BulkOutcome]) -> s.BulkErasureOut:
    summary = {k: 0 for k in ("erased", "already_erased", "not_found", "failed")}
    for o in outcomes:
        summary[o.status] += 1
    return s.BulkErasureOut(
        summary,
        [
            s.BulkOutcomeOut(o.external_id, o.status, o.request_id, o.detail)  # type: ignore[arg-type]
            for o in outcomes
        ],
    )
