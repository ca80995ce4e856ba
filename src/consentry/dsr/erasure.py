"""Erasure of one customer: plugins, crypto-shredding, rows, a tombstone and a certificate.

The order makes every failure safe to retry and never leaves readable data behind a report of
success:
1. every plugin erases its own rows (`dsr_erase`, idempotent); one failing stops here, loudly;
2. the customer's data key is destroyed: from now on their sealed data, in this data store and in
   every backup of it, is unreadable (backups of the key store expire on their own short
   retention, see the README);
3. one transaction deletes the customer's rows, writes the tombstone, completes the request and
   appends the audit entry. A crash before it leaves a customer whose data is already unreadable;
   running the erasure again finishes it.

The consent ledger is pseudonymous (a random subject id, purposes, decisions, hashed evidence);
whether it stays as proof of consent follows the policy (`retention.keep_ledger_after_erasure`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.crypto.blind_index import external_id_hash
from consentry.crypto.envelope import DecryptionError
from consentry.crypto.signing import b64url_decode, jws_sign
from consentry.customers import decode_subject
from consentry.domain.errors import NotFound
from consentry.domain.request_workflow import Step
from consentry.dsr.records import DsrRequest
from consentry.dsr.requests import step_in
from consentry.storage.writer import WriteTx

CERTIFICATE_TYPE = "consentry-deletion-certificate+jwt"


@dataclass(frozen=True, slots=True)
class Certificate:
    request_id: UUID
    jws: str  # compact JWS (EdDSA)
    claims: dict[str, Any]  # what it certifies, read from the JWS


# (table, what it holds): the customer's rows, deleted in this order
_ROWS: tuple[tuple[str, str], ...] = (
    ("events", "events"),
    ("consent_state", "consent_state"),
    ("preference_records", "preference_history"),
    ("preference_state", "preferences"),
    ("confirmations", "pending_confirmations"),
    ("idempotency_keys", "stored_answers"),
    ("dsr_exports", "export_bundles"),
    ("verification_codes", "verification_codes"),
)


async def erase(core: Core, request: DsrRequest, actor: Principal) -> DsrRequest:
    """Erase the customer of an erasure request in progress, and complete the request."""
    subject = await core.db.fetchrow("SELECT * FROM subjects WHERE id = ?", request.subject_id)
    if subject is None:
        raise NotFound("this request's customer is not in the data store")
    external_id = subject["external_id"]  # a tombstone may exist: a re-imported customer
    inventory = await _inventory(core, subject)
    plugins = await _erase_in_plugins(core, request.subject_id)
    await core.keys.destroy(str(request.subject_id))

    async def job(tx: WriteTx) -> DsrRequest:
        counts = await _delete_rows(core, tx, request.subject_id)
        certificate_id = uuid4()
        claims = _certificate(
            core, tx, certificate_id, request, external_id, inventory, counts, plugins
        )
        jws = jws_sign(claims, core.signing_key, typ=CERTIFICATE_TYPE)
        await tx.execute(
            "INSERT INTO erasures (external_id_hash, subject_id, request_id, erased_at,"
            " certificate) VALUES (?, ?, ?, ?, ?) ON CONFLICT (external_id_hash) DO UPDATE SET"
            " subject_id = excluded.subject_id, request_id = excluded.request_id,"
            " erased_at = excluded.erased_at, certificate = excluded.certificate",
            external_id_hash(core.secrets.index_key, external_id),
            request.subject_id,
            request.id,
            tx.now,
            jws,
        )
        tx.audit(
            actor.actor,
            "customer.erased",
            f"subject:{request.subject_id}",
            request=str(request.id),
            certificate=str(certificate_id),
            key_destroyed=True,
            rows=counts,
            plugins=plugins,
            ledger="kept" if core.policy.retention.keep_ledger_after_erasure else "erased",
        )
        summary = {"certificate_id": str(certificate_id), "erased": claims["erased"]}
        return await step_in(
            core, tx, request.id, Step.COMPLETE, actor, None, result={"erasure": summary}
        )

    return await core.writer.submit(job)


async def _inventory(core: Core, subject: dict[str, Any]) -> dict[str, Any]:
    """What is held, by category and field name (never values), read before the key goes."""
    plain = sorted(json.loads(subject["attributes"] or "{}"))
    key = await core.keys.get(str(subject["id"]))
    if key is None:  # a retry after the key was destroyed: the sealed part is unreadable already
        return {"identities": "unreadable (data key already destroyed)", "attributes": plain}
    try:
        customer = decode_subject(subject, key)
    except DecryptionError:
        return {"identities": "unreadable", "attributes": plain}
    by_category: dict[str, list[str]] = {}
    for name in sorted(customer.attributes):
        category = core.policy.category_of(name) or "uncategorised"
        by_category.setdefault(category, []).append(name)
    return {"identities": sorted(customer.identities), "attributes": by_category}


async def _erase_in_plugins(core: Core, subject_id: UUID) -> dict[str, int]:
    def counted(result: Any) -> str | None:
        if isinstance(result, int) and not isinstance(result, bool) and result >= 0:
            return None
        return "dsr_erase must return the number of rows it removed (an int >= 0)"

    return await core.plugins.gather(
        "dsr_erase", core.plugin_context, counted, subject_id=subject_id
    )


async def _delete_rows(core: Core, tx: WriteTx, subject_id: UUID) -> dict[str, int]:
    tables = list(_ROWS)
    if not core.policy.retention.keep_ledger_after_erasure:
        tables.append(("consent_records", "consent_ledger"))
    counts: dict[str, int] = {}
    for table, label in tables:
        counts[label] = await _count_and_delete(tx, table, subject_id)
    if core.policy.retention.keep_ledger_after_erasure:
        counts["consent_ledger_kept"] = await _count(tx, "consent_records", subject_id)
    await tx.execute("UPDATE dsr_requests SET notes_enc = NULL WHERE subject_id = ?", subject_id)
    await tx.execute("DELETE FROM subjects WHERE id = ?", subject_id)
    counts["customer_record"] = 1
    return counts


async def _count(tx: WriteTx, table: str, subject_id: UUID) -> int:
    row = await tx.fetchrow(f"SELECT COUNT(*) AS n FROM {table} WHERE subject_id = ?", subject_id)
    return int(row["n"]) if row else 0


async def _count_and_delete(tx: WriteTx, table: str, subject_id: UUID) -> int:
    found = await _count(tx, table, subject_id)
    if found:
        await tx.execute(f"DELETE FROM {table} WHERE subject_id = ?", subject_id)
    return found


def _certificate(
    core: Core,
    tx: WriteTx,
    certificate_id: UUID,
    request: DsrRequest,
    external_id: str,
    inventory: dict[str, Any],
    counts: dict[str, int],
    plugins: dict[str, int],
) -> dict[str, Any]:
    """The customer's proof that the erasure happened: what, when, under which request."""
    keep = core.policy.retention.keep_ledger_after_erasure
    return {
        "certificate_id": str(certificate_id),
        "iss": core.policy.controller.get("name", "consentry"),
        "iat": int(tx.now.timestamp()),
        "request_id": str(request.id),
        "regulation": request.regulation,
        # the customer checks this with their id: sha256("<request_id>:<external_id>")
        "customer_sha256": hashlib.sha256(f"{request.id}:{external_id}".encode()).hexdigest(),
        "received_at": request.received_at.isoformat(),
        "erased_at": tx.now.isoformat(),
        "erased": {
            "identities": inventory["identities"],
            "attributes": inventory["attributes"],
            "rows": counts,
            "plugins": plugins,
            "data_key": "destroyed (crypto-shredded: copies in backups are unreadable)",
        },
        "kept": {
            "consent_ledger": (
                "kept, pseudonymous, as proof of consent (GDPR Art. 7(1), 17(3)(e))"
                if keep
                else "erased"
            ),
            "audit_log": "kept: holds no personal data, only pseudonymous ids and field names",
            "request_record": "kept: type, dates and state of this request, no personal data",
        },
    }


async def certificate(core: Core, request_id: UUID, subject: str | None = None) -> Certificate:
    """The deletion certificate of a completed erasure; with `subject`, only that customer's."""
    row = await core.db.fetchrow(
        "SELECT subject_id, certificate FROM erasures WHERE request_id = ?", request_id
    )
    if row is None or (subject is not None and str(row["subject_id"]) != subject):
        raise NotFound("no deletion certificate for this request: it is not a completed erasure")
    jws = row["certificate"]
    return Certificate(request_id, jws, json.loads(b64url_decode(jws.split(".")[1])))
