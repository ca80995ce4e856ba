"""Proof of consent at a moment in time (JSON and a printable page) and signed consent receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from jinja2 import Environment, PackageLoader, StrictUndefined
from litestar import Controller, MediaType, get
from litestar.params import PathParameter, QueryParameter
from msgspec import Struct

from consentry.core.errors import Invalid
from consentry.core.principals import READ_SCOPES, Scope
from consentry.customers import records as customers
from consentry.domain.decision import Reason
from consentry.http import schemas as s
from consentry.http.auth import me, require
from consentry.http.deps import CoreDep, ExternalIdPath, Instant, PrincipalDep, plain
from consentry.ledger import proofs, receipts

PROOF_SCOPES = (Scope.COMPLIANCE_READ, Scope.ADMIN)
At = Annotated[
    Instant | None,
    QueryParameter(
        description="The moment to prove, RFC 3339 with an offset (default: now); not in the"
        " future",
    ),
]
RecordIdPath = Annotated[
    str,
    PathParameter(
        max_length=36,
        description="The id of a consent record (a ledger row), a UUID",
        schema_extra={"format": "uuid"},
    ),
]

# -- wire schemas ----------------------------------------------------------------------------


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
    reasons: list[s.ReasonOut]


class ProofPurpose(Struct):
    purpose: str
    title: str
    legal_basis: str
    in_policy: bool
    decision: Literal["allow", "deny"]
    reasons: list[s.ReasonOut]
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


# -- conversion --------------------------------------------------------------------------------


def _decision(allowed: bool) -> Literal["allow", "deny"]:
    return "allow" if allowed else "deny"


def _reasons(reasons: tuple[Reason, ...]) -> list[s.ReasonOut]:
    return [s.ReasonOut(r.code, r.message) for r in reasons]


def _record(r: proofs.RecordProof) -> ProofRecord:
    n = r.notice
    return ProofRecord(
        r.id,
        r.channel,
        r.decision,
        r.legal_basis,
        r.source,
        r.actor,
        r.recorded_at,
        r.expires_at,
        r.policy_version,
        r.evidence,
        ProofNotice(
            n.version, n.language, n.content_hash, n.text, n.in_policy, n.hash_matches, n.note
        ),
        [ProofAuditEntry(e.seq, e.at, e.action, e.actor, e.hash, e.inclusion) for e in r.audit],
    )


def _purpose(p: proofs.PurposeProof) -> ProofPurpose:
    return ProofPurpose(
        p.purpose,
        p.title,
        p.legal_basis,
        p.in_policy,
        _decision(p.allowed),
        _reasons(p.reasons),
        p.decided_by,
        p.notice_in_force,
        [_record(r) for r in p.records],
        [ProofChannel(c.channel, _decision(c.allowed), _reasons(c.reasons)) for c in p.channels],
    )


def proof_out(p: proofs.ConsentProof, external_id: str) -> ConsentProofOut:
    return ConsentProofOut(
        p.subject_id,
        external_id,
        p.at,
        p.generated_at,
        p.policy_version,
        p.controller,
        p.region,
        p.regulation,
        p.customer_since,
        p.existed,
        list(p.notes),
        [_purpose(x) for x in p.purposes],
    )


def receipt_out(r: receipts.Receipt) -> ReceiptOut:
    return ReceiptOut(r.receipt_id, r.jws, r.claims)


def record_uuid(record_id: str) -> UUID:
    try:
        return UUID(record_id)
    except ValueError:
        raise Invalid("record_id must be a UUID (a consent record id)", field="record_id") from None


# -- the printable page ------------------------------------------------------------------------

_TEMPLATES = Environment(
    loader=PackageLoader("consentry.ledger", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_proof(p: proofs.ConsentProof, external_id: str) -> str:
    template = _TEMPLATES.get_template("consent_proof.html")
    return template.render(proof=p, external_id=external_id)


# -- controllers -------------------------------------------------------------------------------


async def _proof(
    core: CoreDep, principal: PrincipalDep, external_id: str, at: datetime | None
) -> proofs.ConsentProof:
    require(principal, *PROOF_SCOPES)
    subject_id, _ = await customers.resolve(core, external_id)
    return await proofs.consent_proof(core, subject_id, plain(at), principal)


class ConsentProofController(Controller):
    path = "/v1/customers/{external_id:str}"
    tags = ["consent proof"]

    @get(
        "/consent-proof",
        summary="Prove what a customer had agreed to at a moment in time",
        description="Per purpose (and channel with records): the ledger record in force at `at`"
        " (default now), the effective decision then, the notice version and text shown, the"
        " evidence and the audit entries that back each record. Needs compliance:read or admin;"
        " the read is audited.",
        operation_id="getConsentProof",
    )
    async def proof(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        at: At = None,
    ) -> ConsentProofOut:
        return proof_out(await _proof(core, principal, external_id, at), external_id)

    @get(
        "/consent-proof.html",
        summary="The proof of consent as a printable page",
        description="The same proof as /consent-proof, as a self-contained HTML report.",
        operation_id="getConsentProofPage",
        media_type=MediaType.HTML,
    )
    async def proof_page(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        at: At = None,
    ) -> str:
        return render_proof(await _proof(core, principal, external_id, at), external_id)

    @get(
        "/consents/{record_id:str}/receipt",
        summary="A signed consent receipt for one ledger record",
        description="Kantara Consent Receipt v1.1 claims, signed as a compact JWS (EdDSA);"
        " verify with the public keys at /.well-known/jwks.json.",
        operation_id="getConsentReceipt",
    )
    async def receipt(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        record_id: RecordIdPath,
    ) -> ReceiptOut:
        require(principal, *READ_SCOPES, Scope.ADMIN)
        subject_id, _ = await customers.resolve(core, external_id)
        rid = record_uuid(record_id)
        return receipt_out(await receipts.receipt_for(core, subject_id, rid, principal))


class MyReceiptController(Controller):
    path = "/v1/me"
    tags = ["customer self-service"]

    @get(
        "/consents/{record_id:str}/receipt",
        summary="A signed receipt for one of my records",
        description="Kantara Consent Receipt v1.1 claims as a compact JWS (EdDSA), for a record"
        " of mine.",
        operation_id="getMyConsentReceipt",
    )
    async def my_receipt(
        self, core: CoreDep, principal: PrincipalDep, record_id: RecordIdPath
    ) -> ReceiptOut:
        subject_id, _ = await me(core, principal)
        return receipt_out(await receipts.receipt_for(core, subject_id, record_uuid(record_id)))


CONTROLLERS: list[Any] = [ConsentProofController, MyReceiptController]
