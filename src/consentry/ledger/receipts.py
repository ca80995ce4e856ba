"""Signed consent receipts: one ledger record as a compact JWS (EdDSA) whose claims follow the
Kantara Consent Receipt v1.1 / ISO/IEC TS 27560 fields.

The receipt names the customer only by their pseudonymous subject id, never by external id or
identity. Its id is derived from the record id, so issuing it again gives the same receipt id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from consentry.core import reads
from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.crypto.signing import jws_sign
from consentry.domain.errors import NotFound
from consentry.domain.purposes import LegalBasis, Policy
from consentry.ledger.proof_history import region_at, region_history, region_rows
from consentry.ledger.records import LedgerRecord, to_record

RECEIPT_VERSION = "KI-CR-v1.1.0"
RECEIPT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://consentry.dev/ns/consent-receipt")
JWS_TYPE = "JWT"


@dataclass(frozen=True, slots=True)
class Receipt:
    receipt_id: str
    jws: str
    claims: dict[str, Any]


def receipt_id(record_id: UUID) -> str:
    """Deterministic: the same record always has the same receipt id."""
    return str(uuid.uuid5(RECEIPT_NAMESPACE, str(record_id)))


def _purpose_claim(policy: Policy, r: LedgerRecord) -> dict[str, Any]:
    spec = policy.purposes.get(r.purpose)
    categories = list(spec.categories) if spec else []
    return {
        "purpose": spec.titles.get(r.language, r.purpose) if spec else r.purpose,
        "purposeCategory": [r.purpose],
        "consentType": "EXPLICIT" if r.legal_basis == LegalBasis.CONSENT else r.legal_basis,
        "piiCategory": categories,
        "primaryPurpose": r.legal_basis == LegalBasis.CONTRACT,
        "termination": r.expires_at.isoformat() if r.expires_at else "withdrawal",
        "thirdPartyDisclosure": bool(spec and spec.gpc_opt_out),
        "decision": r.decision,
        "channel": r.channel,
        "noticeVersion": r.notice_version,
        "noticeHash": r.notice_hash,
    }


def build_claims(
    policy: Policy, subject_id: UUID, r: LedgerRecord, region: str, issued_at: datetime
) -> dict[str, Any]:
    """The Kantara CR v1.1 claims for one ledger record (pure)."""
    controller = policy.controller
    name = controller.get("name", "")
    policy_url = controller.get("policy_url", "")
    spec = policy.purposes.get(r.purpose)
    sensitive = sorted(
        c
        for c in (spec.categories if spec else ())
        if c in policy.categories and policy.categories[c].sensitive
    )
    known = policy.regions.get(region)
    return {
        "version": RECEIPT_VERSION,
        "jurisdiction": region,
        "regulation": known.regulation if known else "unknown",
        "consentTimestamp": int(r.recorded_at.timestamp()),
        "collectionMethod": r.source,
        "consentReceiptID": receipt_id(r.id),
        "recordId": str(r.id),
        "language": r.language,
        "piiPrincipalId": str(subject_id),
        "piiControllers": [
            {
                "piiController": name,
                "contact": controller.get("contact", ""),
                "piiControllerUrl": policy_url,
            }
        ],
        "policyUrl": policy_url,
        "services": [{"service": name, "purposes": [_purpose_claim(policy, r)]}],
        "sensitive": bool(sensitive),
        "spiCat": sensitive,
        "iat": int(issued_at.timestamp()),
        "iss": policy_url or name,
        "policyVersion": r.policy_version,
    }


@dataclass(frozen=True, slots=True)
class _Read:
    record: LedgerRecord
    region: str


async def receipt_for(
    core: Core, subject_id: UUID, record_id: UUID, actor: Principal | None = None
) -> Receipt:
    """A signed receipt for one of this customer's records; a read by staff is audited."""
    missing = f"this customer has no consent record {record_id}"

    async def query(db: reads.Reader) -> _Read:
        rows = await db.fetch(
            "SELECT * FROM consent_records WHERE id = ? AND subject_id = ?", record_id, subject_id
        )
        subject = await db.fetch("SELECT region FROM subjects WHERE id = ?", subject_id)
        if not rows or not subject:
            raise NotFound(missing)
        record = to_record(rows[0])
        history = region_history(await region_rows(db, subject_id))
        return _Read(record, region_at(history, record.recorded_at, str(subject[0]["region"])))

    read = await reads.read(
        core,
        actor,
        query,
        action="consent_receipt.read",
        target=f"subject:{subject_id}",
        details=lambda r: {"record": str(r.record.id)},
    )
    claims = build_claims(core.policy, subject_id, read.record, read.region, core.clock())
    return Receipt(
        claims["consentReceiptID"], jws_sign(claims, core.signing_key, typ=JWS_TYPE), claims
    )
