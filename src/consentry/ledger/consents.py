"""The consent ledger: record decisions, confirm double opt-in, read state and history, check.

Each recorded decision is one immutable ledger row plus an upsert of the current-state row, in
the writer's transaction with one audit entry per request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from consentry.core import reads
from consentry.core.errors import Gone, Invalid, NotFound
from consentry.core.pagination import Page, check_limit, decode_time_cursor, page_of, time_key
from consentry.core.principals import Principal, recorded_source
from consentry.core.runtime import Core
from consentry.crypto.tokens import hash_secret, new_secret
from consentry.customers import tombstones
from consentry.customers.records import data_key, resolve
from consentry.domain.consent import ConsentState, Decision, Source, state_key
from consentry.domain.decision import Verdict, evaluate
from consentry.domain.purposes import Policy, Purpose
from consentry.ledger import reactions
from consentry.ledger.preferences import document_to_preferences
from consentry.plugins.types import ConsentChange
from consentry.storage.database import Row
from consentry.storage.writer import WriteTx

MAX_DECISIONS = 50


@dataclass(frozen=True, slots=True)
class DecisionIn:
    purpose: str
    decision: Decision
    channel: str = ""
    notice_version: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    ip: str | None = None
    user_agent: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class RecordRequest:
    decisions: list[DecisionIn]
    source: Source | None = None  # None: the actor's default (see principals.recorded_source)
    evidence: Evidence = field(default_factory=Evidence)
    gpc: bool = False


@dataclass(frozen=True, slots=True)
class LedgerRecord:
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


@dataclass(frozen=True, slots=True)
class PendingConfirmation:
    purpose: str
    channel: str
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Recorded:
    records: list[LedgerRecord]
    confirmations: list[PendingConfirmation]
    gpc: str  # "applied", "already_opted_out", "not_applicable", "absent"


# -- validation --------------------------------------------------------------------------------


def _validate(policy: Policy, request: RecordRequest) -> None:
    if not request.decisions and not request.gpc:
        raise Invalid("give at least one decision (or send Sec-GPC: 1)", field="decisions")
    if len(request.decisions) > MAX_DECISIONS:
        raise Invalid(f"at most {MAX_DECISIONS} decisions per request", field="decisions")
    seen: set[tuple[str, str]] = set()
    for i, d in enumerate(request.decisions):
        where = f"decisions[{i}]"
        spec = policy.purposes.get(d.purpose)
        if spec is None:
            raise Invalid(
                f"unknown purpose '{d.purpose}'; the policy knows "
                f"{', '.join(sorted(policy.purposes))}",
                field=f"{where}.purpose",
            )
        if d.channel and d.channel not in spec.channels:
            allowed = ", ".join(spec.channels) or "no channels"
            raise Invalid(
                f"purpose '{d.purpose}' may use {allowed}, not '{d.channel}'",
                field=f"{where}.channel",
            )
        if d.notice_version is not None and spec.notice(d.notice_version) is None:
            versions = ", ".join(n.version for n in spec.notices)
            raise Invalid(
                f"purpose '{d.purpose}' has no notice version '{d.notice_version}'"
                f" (known: {versions})",
                field=f"{where}.notice_version",
            )
        if d.language is not None and d.language not in policy.languages:
            raise Invalid(
                f"language must be one of {', '.join(policy.languages)}", field=f"{where}.language"
            )
        if d.decision is Decision.PENDING:
            raise Invalid(
                "'pending' is recorded by the service for double opt-in; send 'granted'",
                field=f"{where}.decision",
            )
        if (d.purpose, d.channel) in seen:
            raise Invalid(
                f"purpose '{d.purpose}' appears twice for the same channel",
                field=f"{where}.purpose",
            )
        seen.add((d.purpose, d.channel))


def _evidence(core: Core, evidence: Evidence) -> dict[str, Any]:
    """IPs are kept only as keyed hashes; URLs without query or fragment."""
    out: dict[str, Any] = {}
    if evidence.ip:
        out["ip_hash"] = hmac.new(
            core.secrets.index_key, b"ip\0" + evidence.ip.encode(), hashlib.sha256
        ).hexdigest()
    if evidence.user_agent:
        out["user_agent"] = evidence.user_agent[:300]
    if evidence.url:
        parts = urlsplit(evidence.url)
        out["url"] = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))[:500]
    return out


# -- recording ---------------------------------------------------------------------------------


async def record(
    core: Core, external_id: str, request: RecordRequest, actor: Principal
) -> Recorded:
    subject_id, region = await resolve(core, external_id)
    return await record_for(core, subject_id, region, request, actor)


async def record_for(
    core: Core, subject_id: UUID, region: str, request: RecordRequest, actor: Principal
) -> Recorded:
    _validate(core.policy, request)
    source = recorded_source(actor, request.source)
    evidence = _evidence(core, request.evidence)

    async def job(tx: WriteTx) -> Recorded:
        tx.concerns(subject_id)
        records: list[LedgerRecord] = []
        confirmations: list[PendingConfirmation] = []
        for d in request.decisions:
            rec, confirmation = await _record_one(core, tx, subject_id, d, source, evidence, actor)
            records.append(rec)
            if confirmation:
                confirmations.append(confirmation)
        if confirmations:  # the answer holds confirmation tokens: a stored replay is sealed
            tx.concerns(subject_id, await data_key(core, subject_id))
        gpc = await _apply_gpc(core, tx, subject_id, region, request, evidence, actor, records)
        if not records:  # a GPC signal with nothing to apply: no change, no entry
            return Recorded(records, confirmations, gpc)
        tx.audit(
            actor.actor,
            "consent.recorded",
            f"subject:{subject_id}",
            source=source.value,
            gpc=gpc,
            decisions=[
                {
                    "purpose": r.purpose,
                    "channel": r.channel,
                    "decision": r.decision,
                    "record": str(r.id),
                }
                for r in records
            ],
        )
        return Recorded(records, confirmations, gpc)

    recorded = await core.writer.submit(job)
    await reactions.consents_changed(core, [_change(subject_id, r) for r in recorded.records])
    return recorded


def _change(subject_id: UUID, r: LedgerRecord) -> ConsentChange:
    return ConsentChange(subject_id, r.purpose, r.channel, r.decision, r.source, r.recorded_at)


async def _record_one(
    core: Core,
    tx: WriteTx,
    subject_id: UUID,
    d: DecisionIn,
    source: Source,
    evidence: dict[str, Any],
    actor: Principal,
) -> tuple[LedgerRecord, PendingConfirmation | None]:
    spec = core.policy.purposes[d.purpose]
    decision = d.decision
    needs_confirmation = (
        decision is Decision.GRANTED and spec.double_opt_in and source is not Source.DOUBLE_OPT_IN
    )
    if needs_confirmation:
        decision = Decision.PENDING
    rec = _ledger_record(core, spec, d, decision, source, evidence, actor, tx.stamp())
    await append(tx, subject_id, rec)
    confirmation = None
    if needs_confirmation:
        confirmation = await _issue_confirmation(core, tx, subject_id, rec)
    return rec, confirmation


def _ledger_record(
    core: Core,
    spec: Purpose,
    d: DecisionIn,
    decision: Decision,
    source: Source,
    evidence: dict[str, Any],
    actor: Principal,
    now: datetime,
) -> LedgerRecord:
    notice = spec.notice(d.notice_version) if d.notice_version else spec.current_notice
    assert notice is not None
    language = d.language or core.policy.languages[0]
    expires = None
    if decision is Decision.GRANTED and spec.expires_after_days:
        expires = now + timedelta(days=spec.expires_after_days)
    return LedgerRecord(
        id=uuid.uuid4(),
        purpose=d.purpose,
        channel=d.channel,
        decision=decision.value,
        legal_basis=spec.legal_basis.value,
        notice_version=notice.version,
        notice_hash=notice.content_hash(language),
        language=language,
        policy_version=core.policy.version,
        source=source.value,
        actor=actor.actor,
        recorded_at=now,
        expires_at=expires,
        evidence=evidence,
    )


async def append(tx: WriteTx, subject_id: UUID, r: LedgerRecord) -> None:
    """One ledger row and the matching current-state row: the only way consent is written."""
    await tx.execute(
        "INSERT INTO consent_records (id, subject_id, purpose, channel, decision, legal_basis,"
        " notice_version, notice_hash, language, policy_version, source, actor, recorded_at,"
        " expires_at, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        r.id,
        subject_id,
        r.purpose,
        r.channel,
        r.decision,
        r.legal_basis,
        r.notice_version,
        r.notice_hash,
        r.language,
        r.policy_version,
        r.source,
        r.actor,
        r.recorded_at,
        r.expires_at,
        json.dumps(r.evidence, sort_keys=True),
    )
    await tx.execute(
        "INSERT INTO consent_state (key, subject_id, purpose, channel, decision, legal_basis,"
        " notice_version, source, record_id, recorded_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
        " decision = excluded.decision, legal_basis = excluded.legal_basis,"
        " notice_version = excluded.notice_version, source = excluded.source,"
        " record_id = excluded.record_id, recorded_at = excluded.recorded_at,"
        " expires_at = excluded.expires_at",
        state_key(subject_id, r.purpose, r.channel),
        subject_id,
        r.purpose,
        r.channel,
        r.decision,
        r.legal_basis,
        r.notice_version,
        r.source,
        r.id,
        r.recorded_at,
        r.expires_at,
    )


async def _issue_confirmation(
    core: Core, tx: WriteTx, subject_id: UUID, rec: LedgerRecord
) -> PendingConfirmation:
    token, digest = new_secret()
    expires = tx.now + timedelta(hours=core.policy.double_opt_in_ttl_hours)
    await tx.execute(
        "INSERT INTO confirmations (token_hash, subject_id, purpose, channel, notice_version,"
        " language, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        digest,
        subject_id,
        rec.purpose,
        rec.channel,
        rec.notice_version,
        rec.language,
        tx.now,
        expires,
    )
    return PendingConfirmation(rec.purpose, rec.channel, token, expires)


async def _apply_gpc(
    core: Core,
    tx: WriteTx,
    subject_id: UUID,
    region: str,
    request: RecordRequest,
    evidence: dict[str, Any],
    actor: Principal,
    records: list[LedgerRecord],
) -> str:
    """A Sec-GPC signal is an opt-out of sale/share where the region honours it; recorded."""
    if not request.gpc:
        return "absent"
    if not core.policy.region(region).honor_gpc:
        return "not_applicable"
    applied = await opt_out_of_sale(core, tx, subject_id, Source.GPC, evidence, actor, records)
    return "applied" if applied else "already_opted_out"


async def opt_out_of_sale(
    core: Core,
    tx: WriteTx,
    subject_id: UUID,
    source: Source,
    evidence: dict[str, Any],
    actor: Principal,
    records: list[LedgerRecord],
) -> bool:
    """Withdraw every purpose the policy marks as sale/share (`gpc_opt_out`), unless already
    withdrawn or denied; each withdrawal is a ledger record. True if any was recorded."""
    applied = False
    for spec in core.policy.purposes.values():
        if not spec.gpc_opt_out:
            continue
        current = await tx.fetchrow(
            "SELECT decision FROM consent_state WHERE key = ?", state_key(subject_id, spec.name, "")
        )
        if current and current["decision"] in (Decision.WITHDRAWN.value, Decision.DENIED.value):
            continue
        rec = _ledger_record(
            core,
            spec,
            DecisionIn(spec.name, Decision.WITHDRAWN),
            Decision.WITHDRAWN,
            source,
            evidence,
            actor,
            tx.stamp(),
        )
        await append(tx, subject_id, rec)
        records.append(rec)
        applied = True
    return applied


async def confirm(core: Core, token: str) -> LedgerRecord:
    """Turn a pending double opt-in into a grant; the token works once, before it expires."""
    digest = hash_secret(token)

    async def job(tx: WriteTx) -> tuple[UUID, LedgerRecord]:
        row = await tx.fetchrow("SELECT * FROM confirmations WHERE token_hash = ?", digest)
        if row is None:
            raise NotFound("this confirmation link is not valid")
        if row["used_at"] is not None:
            raise Gone("this confirmation link was already used")
        if row["expires_at"] <= tx.now:
            raise Gone("this confirmation link has expired; ask for a new one")
        subject_id = UUID(str(row["subject_id"]))
        current = await tx.fetchrow(
            "SELECT decision FROM consent_state WHERE key = ?",
            state_key(subject_id, row["purpose"], row["channel"]),
        )
        if current is None or current["decision"] != Decision.PENDING.value:
            raise Gone("this confirmation link no longer applies: the decision changed since")
        actor = Principal("customer", str(subject_id))
        d = DecisionIn(
            row["purpose"], Decision.GRANTED, row["channel"], row["notice_version"], row["language"]
        )
        rec = _ledger_record(
            core,
            core.policy.purposes[d.purpose],
            d,
            Decision.GRANTED,
            Source.DOUBLE_OPT_IN,
            {},
            actor,
            tx.stamp(),
        )
        await append(tx, subject_id, rec)
        await tx.execute(
            "UPDATE confirmations SET used_at = ? WHERE token_hash = ?", tx.now, digest
        )
        tx.audit(
            actor.actor,
            "consent.confirmed",
            f"subject:{subject_id}",
            purpose=rec.purpose,
            channel=rec.channel,
            record=str(rec.id),
        )
        return subject_id, rec

    subject_id, rec = await core.writer.submit(job)
    await reactions.consents_changed(core, [_change(subject_id, rec)])
    return rec


# -- reading -----------------------------------------------------------------------------------


def to_state(row: Row) -> ConsentState:
    return ConsentState(
        purpose=row["purpose"],
        channel=row["channel"],
        decision=Decision(row["decision"]),
        legal_basis=row["legal_basis"],
        notice_version=row["notice_version"],
        source=row["source"],
        recorded_at=row["recorded_at"],
        expires_at=row["expires_at"],
        record_id=UUID(str(row["record_id"])),
    )


async def current_state(
    core: Core, subject_id: UUID, actor: Principal | None = None
) -> list[ConsentState]:
    """The current decision per purpose and channel; a read by staff is audited."""

    async def query(db: reads.Reader) -> list[ConsentState]:
        sql = "SELECT * FROM consent_state WHERE subject_id = ? ORDER BY purpose, channel"
        return [to_state(r) for r in await db.fetch(sql, subject_id)]

    return await reads.read(
        core,
        actor,
        query,
        action="consents.read",
        target=f"subject:{subject_id}",
        details=lambda states: {"count": len(states)},
    )


def to_record(row: Row) -> LedgerRecord:
    return LedgerRecord(
        id=UUID(str(row["id"])),
        purpose=row["purpose"],
        channel=row["channel"],
        decision=row["decision"],
        legal_basis=row["legal_basis"],
        notice_version=row["notice_version"],
        notice_hash=row["notice_hash"],
        language=row["language"],
        policy_version=row["policy_version"],
        source=row["source"],
        actor=row["actor"],
        recorded_at=row["recorded_at"],
        expires_at=row["expires_at"],
        evidence=json.loads(row["evidence"] or "{}"),
    )


async def history(
    core: Core,
    subject_id: UUID,
    *,
    purpose: str | None,
    cursor: str | None,
    limit: int,
    actor: Principal | None = None,
) -> Page[LedgerRecord]:
    """The ledger for one customer, oldest first; a read by staff is audited."""
    check_limit(limit)
    after = decode_time_cursor(cursor)
    sql = "SELECT * FROM consent_records WHERE subject_id = ?"
    args: list[Any] = [subject_id]
    if purpose:
        sql += " AND purpose = ?"
        args.append(purpose)
    if after:
        sql += " AND (recorded_at > ? OR (recorded_at = ? AND id > ?))"
        args += [after[0], after[0], after[1]]
    sql += " ORDER BY recorded_at, id LIMIT ?"

    async def query(db: reads.Reader) -> Page[LedgerRecord]:
        records = [to_record(r) for r in await db.fetch(sql, *args, limit + 1)]
        return page_of(records, limit, lambda r: time_key(r.recorded_at, r.id))

    return await reads.read(
        core,
        actor,
        query,
        action="consents.history.read",
        target=f"subject:{subject_id}",
        details=lambda page: {
            "count": len(page.items),
            **({"purpose": purpose} if purpose else {}),
        },
    )


# -- the check (hot path: one query) -------------------------------------------------------------

_CHECK_SQL = (
    "SELECT s.id, s.region, p.document, c.purpose, c.channel, c.decision, c.legal_basis,"
    " c.notice_version, c.source, c.record_id, c.recorded_at, c.expires_at"
    " FROM subjects s LEFT JOIN preference_state p ON p.subject_id = s.id"
    " LEFT JOIN consent_state c ON c.subject_id = s.id AND c.purpose = ?"
    " WHERE s.external_id = ?"
)


async def check(
    core: Core, external_id: str, purpose: str, channel: str | None = None, topic: str | None = None
) -> Verdict:
    rows = await core.db.fetch(_CHECK_SQL, purpose, external_id)
    if not rows:
        raise await tombstones.missing(core, external_id)
    first = rows[0]
    states = {(r["purpose"], r["channel"]): to_state(r) for r in rows if r["purpose"] is not None}
    prefs = document_to_preferences(json.loads(first["document"]) if first["document"] else {})
    return evaluate(
        core.policy,
        region=first["region"],
        purpose=purpose,
        channel=channel,
        topic=topic,
        states=states,
        preferences=prefs,
        now=core.clock(),
    )
