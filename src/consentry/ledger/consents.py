"""Recording consent decisions (and the opt-out of sale/share a GPC signal or a request asks).

Each recorded decision is one immutable ledger row plus an upsert of the current-state row, in
the writer's transaction with one audit entry per request. Double opt-in confirmation is in
`double_opt_in`, reading state and history and the check in `consent_reads`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from consentry.core.principals import Principal, recorded_source
from consentry.core.runtime import Core
from consentry.customers import data_key, resolve
from consentry.domain.consent import Decision, Source, state_key
from consentry.domain.errors import Invalid
from consentry.domain.purposes import Policy
from consentry.ledger import reactions
from consentry.ledger.double_opt_in import PendingConfirmation, issue_confirmation
from consentry.ledger.records import LedgerRecord, append, change, new_record
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
    await reactions.consents_changed(core, [change(subject_id, r) for r in recorded.records])
    return recorded


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
    rec = new_record(
        core,
        spec,
        decision,
        source,
        evidence,
        actor,
        tx.stamp(),
        channel=d.channel,
        notice_version=d.notice_version,
        language=d.language,
    )
    await append(tx, subject_id, rec)
    confirmation = None
    if needs_confirmation:
        confirmation = await issue_confirmation(core, tx, subject_id, rec)
    return rec, confirmation


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
        rec = new_record(core, spec, Decision.WITHDRAWN, source, evidence, actor, tx.stamp())
        await append(tx, subject_id, rec)
        records.append(rec)
        applied = True
    return applied
