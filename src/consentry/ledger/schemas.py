"""Wire schemas of the ledger: events, purposes, consents, preferences, proofs and receipts,
with the few conversions whose names differ between the wire and the services."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta, Struct

from consentry.domain.consent import Source
from consentry.domain.decision import Verdict
from consentry.domain.purposes import Policy, Purpose
from consentry.domain.text import clean_keys, clean_name
from consentry.http.schemas import ExternalId, wire
from consentry.ledger import consents, events, preferences
from consentry.ledger.proofs import allow_or_deny

Name = Annotated[str, Meta(min_length=1, max_length=100)]
DecisionValue = Literal["granted", "denied", "withdrawn"]
SourceValue = Literal["preference_center", "api", "import", "unsubscribe_link"]


# -- events ------------------------------------------------------------------------------------


class EventIn(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    occurred_at: datetime | None = None
    properties: dict[Annotated[str, Meta(max_length=64)], Any] = {}

    def __post_init__(self) -> None:
        self.name = clean_name(self.name, field="name")
        self.properties = clean_keys(self.properties, field="properties")

    def command(self, external_id: str) -> events.EventIn:
        return events.EventIn(external_id, self.name, self.occurred_at, dict(self.properties))


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

    def command(self, sec_gpc: str | None) -> consents.RecordRequest:
        return consents.RecordRequest(
            decisions=wire(self.decisions, list[consents.DecisionIn]),
            source=Source(self.source) if self.source else None,
            evidence=wire(self.evidence or Evidence(), consents.Evidence),
            gpc=(sec_gpc or "").strip() == "1",
        )


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

    def patch(self) -> preferences.PreferencePatch:
        def kept(value: Any) -> Any:
            if value is msgspec.UNSET:
                return preferences.UNSET
            return msgspec.to_builtins(value) if isinstance(value, Struct) else value

        return preferences.PreferencePatch(
            channels=dict(self.channels) if self.channels else None,
            topics=dict(self.topics) if self.topics else None,
            quiet_hours=kept(self.quiet_hours),
            language=kept(self.language),
            frequency_cap_per_week=kept(self.frequency_cap_per_week),
        )


class PreferencesOut(Struct):
    channels: dict[str, bool]
    topics: dict[str, bool]
    quiet_hours: dict[str, str] | None
    language: str | None
    frequency_cap_per_week: int | None


# -- proofs and receipts -----------------------------------------------------------------------


class ProofAuditEntry(Struct):
    seq: int
    at: datetime
    action: str
    actor: str
    hash: str
    inclusion: dict[str, Any] | None  # Merkle inclusion proof in a signed checkpoint


class ProofNotice(Struct):
    version: str
    language: str
    content_hash: str
    text: str | None
    in_policy: bool
    hash_matches: bool
    note: str


class ProofRecord(Struct):
    id: UUID
    channel: str
    decision: str
    legal_basis: str
    source: str
    actor: str
    recorded_at: datetime
    expires_at: datetime | None
    policy_version: str
    evidence: dict[str, Any]
    notice: ProofNotice
    audit: list[ProofAuditEntry]


class ProofChannel(Struct):
    channel: str
    decision: Literal["allow", "deny"]
    reasons: list[ReasonOut]


class ProofPurpose(Struct):
    purpose: str
    title: str
    legal_basis: str
    in_policy: bool
    decision: Literal["allow", "deny"]
    reasons: list[ReasonOut]
    decided_by: str
    notice_in_force: str | None
    records: list[ProofRecord]
    channels: list[ProofChannel]


class ConsentProofOut(Struct):
    subject_id: UUID
    external_id: str
    at: datetime
    generated_at: datetime
    policy_version: str
    controller: dict[str, str]
    region: str
    regulation: str
    customer_since: datetime
    existed: bool
    notes: list[str]
    purposes: list[ProofPurpose]


class ReceiptOut(Struct):
    receipt_id: str
    jws: str
    claims: dict[str, Any]


# -- from the services, where names differ -----------------------------------------------------


def check_out(v: Verdict) -> CheckOut:
    reasons = wire(v.reasons, list[ReasonOut])
    return CheckOut(allow_or_deny(v.allowed), v.purpose, v.channel, v.legal_basis, reasons)


def preferences_out(document: dict[str, Any]) -> PreferencesOut:
    """The stored document, each setting absent from it empty."""
    return wire(_NO_PREFERENCES | document, PreferencesOut)


_NO_PREFERENCES: dict[str, Any] = {
    "channels": {},
    "topics": {},
    "quiet_hours": None,
    "language": None,
    "frequency_cap_per_week": None,
}


def purpose_out(policy: Policy, p: Purpose, language: str) -> PurposeOut:
    notice = p.current_notice
    return PurposeOut(
        name=p.name,
        title=p.titles.get(language, p.name),
        legal_basis=p.legal_basis.value,
        categories=list(p.categories),
        channels=list(p.channels),
        double_opt_in=p.double_opt_in,
        expires_after_days=p.expires_after_days,
        notice=NoticeOut(
            notice.version,
            language,
            notice.texts[language],
            notice.content_hash(language),
            notice.published,
        ),
        notice_history=[n.version for n in p.notices],
    )
