"""Wire schemas, written by hand: what every area's answers share (problems, the shown-once
secret, common types), and the conversion of a service's value into its wire schema.

Each area keeps its own wire schemas next to its routes (`access.schemas`, `customers.schemas`,
`ledger.schemas`, `audit_log.schemas`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import msgspec
from msgspec import Meta, Struct

T = TypeVar("T")

ExternalId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$",
        description="The company's own id for the customer",
    ),
]


def wire(value: Any, schema: type[T]) -> T:
    """A service's value as a wire schema, field by field by name (`msgspec.convert`)."""
    return msgspec.convert(value, schema, from_attributes=True)


class FieldError(Struct):
    field: str
    detail: str


class Problem(Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None  # every invalid field, on a 422


class ShownOnce(Struct):
    """An answer holding a secret shown once: its idempotent replay is a 409 with this detail,
    so the secret is never stored (see `api.writes.respond`)."""

    def replay_detail(self) -> str:
        raise NotImplementedError


# -- customer tokens (issued by customers, and by dsr after an email verification) -------------


class TokenIn(Struct, forbid_unknown_fields=True):
    ttl_seconds: Annotated[int, Meta(ge=60, le=86_400)] | None = None


class TokenOut(ShownOnce):
    token: str
    expires_at: datetime

    def replay_detail(self) -> str:
        return (
            "this request already issued a customer token; a token is shown once, in that first"
            " answer, and is not kept. If the answer was lost, ask for another with a new"
            " Idempotency-Key"
        )


# -- data-subject requests ---------------------------------------------------------------------

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
