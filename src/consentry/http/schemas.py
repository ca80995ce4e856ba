"""Wire schemas, written by hand: what the API accepts and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta, Struct

from consentry.domain.text import clean_keys, clean_name

# defined with the plugin contract (plugin routes answer problems too)
from consentry.plugins.web import FieldError as FieldError
from consentry.plugins.web import Problem as Problem

ExternalId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$",
        description="The company's own id for the customer",
    ),
]
Name = Annotated[str, Meta(min_length=1, max_length=100)]
DecisionValue = Literal["granted", "denied", "withdrawn"]
SourceValue = Literal["preference_center", "api", "import", "unsubscribe_link"]
AttributeValue = str | int | float | bool | None


# -- customers ---------------------------------------------------------------------------------


class CustomerIn(Struct, forbid_unknown_fields=True):
    region: Annotated[str, Meta(max_length=20)] | None = None
    identities: dict[
        Annotated[str, Meta(max_length=20)], Annotated[str, Meta(max_length=320)] | None
    ] = {}
    attributes: dict[Annotated[str, Meta(max_length=64)], AttributeValue] = {}

    def __post_init__(self) -> None:
        self.attributes = clean_keys(self.attributes, field="attributes")


class CustomerOut(Struct):
    id: UUID
    external_id: str
    region: str
    identities: dict[str, str]
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int
    previously_erased_at: datetime | None = None  # this id belonged to a customer erased then


class CustomerSummary(Struct):
    id: UUID
    external_id: str
    region: str
    created_at: datetime
    updated_at: datetime


class CustomerPage(Struct):
    items: list[CustomerSummary]
    next_cursor: str | None


class CustomerSearch(Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(max_length=320)] | None = None
    phone: Annotated[str, Meta(max_length=40)] | None = None
    reason: Annotated[str, Meta(max_length=200)] | None = None


# -- events ------------------------------------------------------------------------------------


class EventIn(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    occurred_at: datetime | None = None
    properties: dict[Annotated[str, Meta(max_length=64)], Any] = {}

    def __post_init__(self) -> None:
        self.name = clean_name(self.name, field="name")
        self.properties = clean_keys(self.properties, field="properties")


class BatchEventIn(EventIn, forbid_unknown_fields=True, kw_only=True):
    external_id: ExternalId  # required: keyword-only, so it may follow EventIn's defaults


class EventBatch(Struct, forbid_unknown_fields=True):
    events: Annotated[list[BatchEventIn], Meta(min_length=1, max_length=1000)]


class EventOut(Struct):
    id: UUID
    name: str
    occurred_at: datetime
    received_at: datetime
    properties: dict[str, Any]


class EventPage(Struct):
    items: list[EventOut]
    next_cursor: str | None


class Ingested(Struct):
    accepted: int
    ids: list[UUID]


# -- purposes ----------------------------------------------------------------------------------


class NoticeOut(Struct):
    version: str
    language: str
    text: str
    content_hash: str
    published: str


class PurposeOut(Struct):
    name: str
    title: str
    legal_basis: str
    categories: list[str]
    channels: list[str]
    double_opt_in: bool
    expires_after_days: int | None
    notice: NoticeOut
    notice_history: list[str]


class PurposeList(Struct):
    policy_version: str
    language: str
    items: list[PurposeOut]


# -- consents ----------------------------------------------------------------------------------


class Evidence(Struct, forbid_unknown_fields=True):
    ip: Annotated[str, Meta(max_length=64)] | None = None
    user_agent: Annotated[str, Meta(max_length=1000)] | None = None
    url: Annotated[str, Meta(max_length=2000)] | None = None


class DecisionIn(Struct, forbid_unknown_fields=True):
    purpose: Name
    decision: DecisionValue
    channel: Annotated[str, Meta(max_length=50)] = ""
    notice_version: Annotated[str, Meta(max_length=50)] | None = None
    language: Annotated[str, Meta(max_length=10)] | None = None


class ConsentRequest(Struct, forbid_unknown_fields=True):
    decisions: Annotated[list[DecisionIn], Meta(max_length=50)] = []
    # who recorded it: a backend key may say any; a customer's own token only preference_center
    # (its default) or unsubscribe_link; absent: api for a key
    source: SourceValue | None = None
    evidence: Evidence | None = None


class LedgerRecordOut(Struct):
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
    evidence: dict[str, Any]


class ConfirmationOut(Struct):
    purpose: str
    channel: str
    token: str
    expires_at: datetime


class Recorded(Struct):
    records: list[LedgerRecordOut]
    confirmations: list[ConfirmationOut]
    gpc: Literal["applied", "already_opted_out", "not_applicable", "absent"]


class ConsentStateOut(Struct):
    purpose: str
    channel: str
    decision: str
    legal_basis: str
    notice_version: str
    source: str
    record_id: UUID
    recorded_at: datetime
    expires_at: datetime | None


class ConsentStateList(Struct):
    items: list[ConsentStateOut]


class HistoryPage(Struct):
    items: list[LedgerRecordOut]
    next_cursor: str | None


class ConfirmIn(Struct, forbid_unknown_fields=True):
    token: Annotated[str, Meta(min_length=1, max_length=200)]


class ReasonOut(Struct):
    code: str
    message: str


class CheckOut(Struct):
    decision: Literal["allow", "deny"]
    purpose: str
    channel: str | None
    legal_basis: str | None
    reasons: list[ReasonOut]


# -- preferences -------------------------------------------------------------------------------


class QuietHoursIn(Struct, forbid_unknown_fields=True):
    start: Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM")]
    end: Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM")]
    timezone: Annotated[str, Meta(min_length=1, max_length=64, description="IANA time zone")]


class PreferencesPatch(Struct, forbid_unknown_fields=True):
    channels: dict[Annotated[str, Meta(max_length=50)], bool] | None = None
    topics: dict[Annotated[str, Meta(max_length=100)], bool] | None = None
    quiet_hours: QuietHoursIn | msgspec.UnsetType | None = msgspec.UNSET
    language: Annotated[str, Meta(max_length=10)] | msgspec.UnsetType | None = msgspec.UNSET
    frequency_cap_per_week: Annotated[int, Meta(ge=0, le=1000)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    # who recorded it: a backend key may say any; a customer's own token only preference_center
    # (its default) or unsubscribe_link; absent: api for a key
    source: SourceValue | None = None


class PreferencesOut(Struct):
    channels: dict[str, bool]
    topics: dict[str, bool]
    quiet_hours: dict[str, str] | None
    language: str | None
    frequency_cap_per_week: int | None


# -- access ------------------------------------------------------------------------------------


class ApiKeyIn(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    scopes: Annotated[
        list[
            Literal["admin", "compliance:read", "compliance:write", "backend:write", "backend:read"]
        ],
        Meta(min_length=1, max_length=5),
    ]

    def __post_init__(self) -> None:
        self.name = clean_name(self.name, field="name")


class ApiKeyOut(Struct):
    id: str
    name: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class ShownOnce(Struct):
    """An answer holding a secret shown once: its idempotent replay is a 409 with this detail,
    so the secret is never stored (see `api.writes.respond`)."""

    def replay_detail(self) -> str:
        raise NotImplementedError


class NewApiKeyOut(ShownOnce):
    key: str
    api_key: ApiKeyOut

    def replay_detail(self) -> str:
        key_id = self.api_key.id
        return (
            f"this request already created API key {key_id}; its secret was shown once, in"
            " that first answer, and is not kept. If the answer was lost, revoke the key"
            f" (DELETE /v1/api-keys/{key_id}) and create another with a new Idempotency-Key"
        )


class ApiKeyPage(Struct):
    items: list[ApiKeyOut]
    next_cursor: str | None


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


# -- audit -------------------------------------------------------------------------------------


class AuditEntryOut(Struct):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    policy_version: str
    prev_hash: str
    hash: str
    # details.reason_sealed opened with the customer's key; null once they are erased
    reason: str | None = None


class AuditPage(Struct):
    items: list[AuditEntryOut]
    next_cursor: str | None


class CheckpointOut(Struct):
    tree_size: int
    root: str
    head_hash: str
    at: datetime
    key_id: str
    signature: str


class CheckpointPage(Struct):
    items: list[CheckpointOut]
    next_cursor: str | None


class InclusionProofOut(Struct):
    seq: int
    leaf_index: int
    entry_hash: str
    proof: list[str]
    checkpoint: CheckpointOut


class ConsistencyProofOut(Struct):
    from_size: int
    to_size: int
    proof: list[str]
    old: CheckpointOut
    new: CheckpointOut


class PublicKeyOut(Struct):
    key_id: str
    pem: str
    jwk: dict[str, str]
    created_at: datetime
    retired_at: datetime | None


class PublicKeyList(Struct):
    current: str
    items: list[PublicKeyOut]


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
