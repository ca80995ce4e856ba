"""Proof of consent at a moment in time (JSON and a printable page) and signed consent receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from jinja2 import Environment, PackageLoader, StrictUndefined
from litestar import Controller, MediaType, get
from litestar.params import PathParameter, QueryParameter

from consentry import customers
from consentry.access import require
from consentry.core.principals import READ_SCOPES, Scope
from consentry.customers import me
from consentry.domain.errors import Invalid
from consentry.http.deps import CoreDep, ExternalIdPath, Instant, PrincipalDep, plain
from consentry.http.schemas import wire
from consentry.ledger import proofs, receipts
from consentry.ledger import schemas as s

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
    ) -> s.ConsentProofOut:
        return wire(await _proof(core, principal, external_id, at), s.ConsentProofOut)

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
    ) -> s.ReceiptOut:
        require(principal, *READ_SCOPES, Scope.ADMIN)
        subject_id, _ = await customers.resolve(core, external_id)
        rid = record_uuid(record_id)
        return wire(await receipts.receipt_for(core, subject_id, rid, principal), s.ReceiptOut)


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
    ) -> s.ReceiptOut:
        subject_id, _ = await me(core, principal)
        receipt = await receipts.receipt_for(core, subject_id, record_uuid(record_id))
        return wire(receipt, s.ReceiptOut)


CONTROLLERS: list[Any] = [ConsentProofController, MyReceiptController]
