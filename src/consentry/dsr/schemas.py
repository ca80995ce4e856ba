"""Data-subject requests on the wire: the bodies the API takes and gives, and the converters
from the room's values to them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta, Struct

from consentry.dsr.records import DsrRequest
from consentry.dsr.workflow import BulkOutcome
from consentry.http.schemas import ExternalId

RequestTypeValue = Literal[
    "access", "portability", "erasure", "rectification", "restrict", "opt_out_sale_share"
]
RequestStateValue = Literal["received", "verified", "in_progress", "completed", "rejected"]
Reason = Annotated[str, Meta(min_length=1, max_length=2000)]


class RequestIn(Struct, forbid_unknown_fields=True):
    external_id: ExternalId
    type: RequestTypeValue
    regulation: Annotated[str, Meta(min_length=1, max_length=30)] | None = None
    note: Reason | None = None
    verified_by: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class MyRequestIn(Struct, forbid_unknown_fields=True):
    type: Literal["access", "portability", "erasure"]
    note: Reason | None = None


class VerifyIn(Struct, forbid_unknown_fields=True):
    method: Annotated[str, Meta(min_length=1, max_length=200)]


class ReasonIn(Struct, forbid_unknown_fields=True):
    reason: Reason


class FulfilIn(Struct, forbid_unknown_fields=True):
    note: Reason | None = None


class ClocksOut(Struct):
    due: str  # the date that counts now (UTC), end of day
    days_left: int | None  # None once the request is closed
    overdue: bool
    respond_by: str
    extended_to: str | None
    acknowledge_by: str | None
    acknowledged_at: datetime | None
    acknowledgement_overdue: bool


class RequestOut(Struct):
    id: UUID
    external_id: str | None  # null once the customer is erased
    type: RequestTypeValue
    regulation: str
    state: RequestStateValue
    channel: str
    received_at: datetime
    clocks: ClocksOut
    extended_at: datetime | None
    closed_at: datetime | None
    notes: dict[str, str] | None  # null: sealed with a data key that was destroyed
    history: list[dict[str, Any]]
    result: dict[str, Any]


class RequestPage(Struct):
    items: list[RequestOut]
    next_cursor: str | None


class DownloadLinkOut(Struct):
    url: str
    expires_at: datetime


class CertificateOut(Struct):
    request_id: UUID
    jws: str  # compact JWS (EdDSA): verify with /.well-known/jwks.json
    claims: dict[str, Any]


class BulkErasureIn(Struct, forbid_unknown_fields=True):
    external_ids: Annotated[list[ExternalId], Meta(min_length=1, max_length=1000)]
    regulation: Annotated[str, Meta(min_length=1, max_length=30)] | None = None
    note: Reason | None = None


class BulkOutcomeOut(Struct, omit_defaults=True):
    external_id: str
    status: Literal["erased", "already_erased", "not_found", "failed"]
    request_id: UUID | None = None
    detail: str = ""


class BulkErasureOut(Struct):
    summary: dict[str, int]
    results: list[BulkOutcomeOut]


class VerificationIn(Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(min_length=3, max_length=320)]


class VerificationConfirmIn(Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(min_length=3, max_length=320)]
    code: Annotated[str, Meta(pattern=r"^[0-9]{10}$", description="the ten digits emailed")]


class VerificationSentOut(Struct):
    detail: str


# -- converters --------------------------------------------------------------------------------


def request_out(r: DsrRequest, now: datetime) -> RequestOut:
    def day(d: date | None) -> str | None:
        return d.isoformat() if d else None

    clocks = ClocksOut(
        due=r.due_on.isoformat(),
        days_left=r.days_left(now),
        overdue=r.overdue(now),
        respond_by=r.respond_by.isoformat(),
        extended_to=day(r.extended_to),
        acknowledge_by=day(r.acknowledge_by),
        acknowledged_at=r.acknowledged_at,
        acknowledgement_overdue=r.state.open and r.acknowledgement_overdue(now),
    )
    return RequestOut(
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


def bulk_out(outcomes: list[BulkOutcome]) -> BulkErasureOut:
    summary = {k: 0 for k in ("erased", "already_erased", "not_found", "failed")}
    for o in outcomes:
        summary[o.status] += 1
    return BulkErasureOut(
        summary,
        [
            BulkOutcomeOut(o.external_id, o.status, o.request_id, o.detail)  # type: ignore[arg-type]
            for o in outcomes
        ],
    )
