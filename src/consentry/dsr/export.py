"""Access and portability: everything held about one customer, as a bundle they can download.

The bundle (`domain.bundle`: JSON files, a manifest of SHA-256 checksums and a summary page) is
built once, sealed with the customer's data key and kept until its download link expires; an
erasure shreds it with everything else. Building it and every download are audited.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.crypto.envelope import decrypt, encrypt
from consentry.crypto.tokens import TokenError, sign_token, verify_token
from consentry.customers import decode_subject
from consentry.domain.errors import Gone, NotFound, Unauthorized, Unavailable
from consentry.domain.request_workflow import Step
from consentry.dsr.bundle import build_bundle
from consentry.dsr.queue import get
from consentry.dsr.records import DsrRequest
from consentry.dsr.requests import step_in
from consentry.storage.database import Row
from consentry.storage.writer import WriteTx

LINK_SCOPE = "dsr_export"


@dataclass(frozen=True, slots=True)
class Download:
    filename: str
    content: bytes
    sha256: str


@dataclass(frozen=True, slots=True)
class Link:
    token: str
    expires_at: datetime
    url: str  # built from the configured public URL only, never from a request header


def _aad(request_id: UUID) -> str:
    return f"dsr:{request_id}:export"


async def export(core: Core, request: DsrRequest, actor: Principal) -> DsrRequest:
    """Build the bundle for an access or portability request in progress, and complete it."""
    key = await core.keys.get(str(request.subject_id))
    subject = await core.db.fetchrow("SELECT * FROM subjects WHERE id = ?", request.subject_id)
    if key is None or subject is None:
        raise Gone("this customer was erased: there is nothing left to export")
    customer = decode_subject(subject, key)
    sections: dict[str, Any] = {
        "customer": {
            "external_id": customer.external_id,
            "region": customer.region,
            "identities": customer.identities,
            "attributes": customer.attributes,
            "created_at": customer.created_at,
            "updated_at": customer.updated_at,
        },
        "events": await _events(core, request.subject_id),
        "consents": await _consents(core, request.subject_id),
        "preferences": await _preferences(core, request.subject_id),
        "requests": await _requests(core, request.subject_id),
    }
    plugins = await _from_plugins(core, request.subject_id)
    now = core.clock()
    bundle = build_bundle(
        request_id=str(request.id),
        external_id=customer.external_id,
        generated_at=now,
        controller=dict(core.policy.controller),
        sections=sections,
        plugins=plugins,
    )
    digest = hashlib.sha256(bundle).hexdigest()
    sealed = encrypt(key, bundle, aad=_aad(request.id))
    counts = {
        "events": len(sections["events"]),
        "consent_records": len(sections["consents"]["history"]),
        "preference_records": len(sections["preferences"]["history"]),
        "plugins": sorted(plugins),
    }

    async def job(tx: WriteTx) -> DsrRequest:
        expires = tx.now + timedelta(seconds=core.settings.export_link_ttl_seconds)
        await tx.execute(
            "INSERT INTO dsr_exports (request_id, subject_id, created_at, expires_at, sha256,"
            " size, bundle_enc, downloads) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
            request.id,
            request.subject_id,
            tx.now,
            expires,
            digest,
            len(bundle),
            sealed,
        )
        tx.audit(
            actor.actor,
            "dsr.exported",
            f"subject:{request.subject_id}",
            request=str(request.id),
            sha256=digest,
            bytes=len(bundle),
            **counts,
        )
        summary = {"sha256": digest, "bytes": len(bundle), "expires_at": expires, **counts}
        return await step_in(
            core, tx, request.id, Step.COMPLETE, actor, key, result={"export": summary}
        )

    return await core.writer.submit(job)


async def _events(core: Core, subject_id: UUID) -> list[dict[str, Any]]:
    rows = await core.db.fetch(
        "SELECT name, occurred_at, received_at, properties FROM events WHERE subject_id = ?"
        " ORDER BY occurred_at, id",
        subject_id,
    )
    return [{**r, "properties": json.loads(r["properties"] or "{}")} for r in rows]


async def _consents(core: Core, subject_id: UUID) -> dict[str, Any]:
    current = await core.db.fetch(
        "SELECT purpose, channel, decision, legal_basis, notice_version, source, recorded_at,"
        " expires_at FROM consent_state WHERE subject_id = ? ORDER BY purpose, channel",
        subject_id,
    )
    ledger = await core.db.fetch(
        "SELECT purpose, channel, decision, legal_basis, notice_version, notice_hash, language,"
        " policy_version, source, actor, recorded_at, expires_at, evidence"
        " FROM consent_records WHERE subject_id = ? ORDER BY recorded_at, id",
        subject_id,
    )
    history = []
    for r in ledger:
        spec = core.policy.purposes.get(r["purpose"])
        notice = spec.notice(r["notice_version"]) if spec else None
        text = notice.texts.get(r["language"]) if notice else None
        history.append({**r, "evidence": json.loads(r["evidence"] or "{}"), "notice_text": text})
    return {"current": current, "history": history}


async def _preferences(core: Core, subject_id: UUID) -> dict[str, Any]:
    state = await core.db.fetchrow(
        "SELECT document, updated_at FROM preference_state WHERE subject_id = ?", subject_id
    )
    records = await core.db.fetch(
        "SELECT changes, source, actor, recorded_at FROM preference_records"
        " WHERE subject_id = ? ORDER BY recorded_at, id",
        subject_id,
    )
    return {
        "current": json.loads(state["document"]) if state else {},
        "history": [{**r, "changes": json.loads(r["changes"] or "{}")} for r in records],
    }


async def _requests(core: Core, subject_id: UUID) -> list[dict[str, Any]]:
    rows = await core.db.fetch(
        "SELECT id, type, regulation, state, received_at, due_on, closed_at FROM dsr_requests"
        " WHERE subject_id = ? ORDER BY received_at",
        subject_id,
    )
    return [
        {
            "id": str(r["id"]),
            "type": r["type"],
            "regulation": r["regulation"],
            "state": r["state"],
            "received_at": r["received_at"],
            "due": r["due_on"],
            "completed_at": r["closed_at"],
        }
        for r in rows
    ]


async def _from_plugins(core: Core, subject_id: UUID) -> dict[str, Any]:
    def checked(result: Any) -> str | None:
        if not isinstance(result, dict):
            return "dsr_export must return a dict (use {} when nothing is held)"
        try:
            json.dumps(result, default=str)
        except (TypeError, ValueError) as exc:
            return f"dsr_export returned data that is not JSON: {exc}"
        return None

    return await core.plugins.gather(
        "dsr_export", core.plugin_context, checked, subject_id=subject_id
    )


# -- downloads ---------------------------------------------------------------------------------


async def _stored(core: Core, request_id: UUID) -> Row:
    row = await core.db.fetchrow(
        "SELECT request_id, subject_id, created_at, expires_at, sha256, size"
        " FROM dsr_exports WHERE request_id = ?",
        request_id,
    )
    if row is None:
        raise NotFound(
            "this request has no export: it is not an access or portability request, it is not"
            " fulfilled yet, or its customer was erased"
        )
    if core.clock() >= row["expires_at"]:
        raise Gone(
            f"the export expired on {row['expires_at']:%Y-%m-%d %H:%M} UTC; file a new request"
        )
    return row


async def link(core: Core, request_id: UUID, actor: Principal) -> Link:
    """A download link for the customer; it expires with the bundle (or sooner)."""
    base = core.settings.public_url
    if not base:  # a Host header would be the attacker's to choose: refuse rather than guess
        raise Unavailable(
            "download links need the service's public address: set CONSENTRY_PUBLIC_URL"
            " (e.g. https://consent.example.com) and restart"
        )
    row = await _stored(core, request_id)
    ttl = int((row["expires_at"] - core.clock()).total_seconds())

    async def job(tx: WriteTx) -> Link:
        token = sign_token(
            core.secrets.token_key,
            {"scope": LINK_SCOPE, "req": str(request_id)},
            now=tx.now,
            ttl_seconds=max(ttl, 1),
        )
        tx.audit(
            actor.actor,
            "dsr.export_link.issued",
            f"subject:{row['subject_id']}",
            request=str(request_id),
        )
        return Link(token, row["expires_at"], f"{base}/v1/exports/{token}")

    return await core.writer.submit(job)


def request_of_link(core: Core, token: str) -> UUID:
    try:
        claims = verify_token(core.secrets.token_key, token, now=core.clock())
    except TokenError as exc:
        raise Unauthorized(f"download link rejected: {exc.reason}") from None
    if claims.get("scope") != LINK_SCOPE or not isinstance(claims.get("req"), str):
        raise Unauthorized("download link rejected: not a download link")
    return UUID(str(claims["req"]))


async def download(core: Core, request_id: UUID, actor: str) -> Download:
    """The bundle, opened with the customer's key; each download is audited."""
    row = await _stored(core, request_id)
    key = await core.keys.get(str(row["subject_id"]))
    if key is None:
        raise Gone("this customer was erased: the export is gone with their data")

    async def job(tx: WriteTx) -> bytes:
        blob = await tx.fetchrow(
            "SELECT bundle_enc FROM dsr_exports WHERE request_id = ?", request_id
        )
        if blob is None:
            raise Gone("the export is gone (its customer was erased)")
        await tx.execute(
            "UPDATE dsr_exports SET downloads = downloads + 1 WHERE request_id = ?", request_id
        )
        tx.audit(
            actor,
            "dsr.export.downloaded",
            f"subject:{row['subject_id']}",
            request=str(request_id),
            sha256=row["sha256"],
        )
        return bytes(blob["bundle_enc"])

    sealed = await core.writer.submit(job)
    content = decrypt(key, sealed, aad=_aad(request_id))
    return Download(f"consentry-export-{request_id}.zip", content, row["sha256"])


async def download_by_link(core: Core, token: str) -> Download:
    """The bundle a download link is for; the link is the only credential."""
    return await download(core, request_of_link(core, token), "link:export")


async def download_mine(core: Core, request_id: UUID, customer: Principal) -> Download:
    """The bundle of one of the customer's own requests (404 for anyone else's)."""
    await get(core, request_id, customer)
    return await download(core, request_id, customer.actor)
