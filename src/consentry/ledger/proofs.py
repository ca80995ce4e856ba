"""Proof of consent at a moment in time (GDPR Art. 7(1)): what a customer had agreed to at `at`,
under which notice text and legal basis, and the audit entries that back each ledger record.

The ledger as of `at` (per purpose and channel, the latest record with recorded_at <= at) goes
through the domain decision logic with `now=at`, so expiry, outdated notices and region defaults
apply as they did then. Two things are reconstructed, since the service keeps no copy of older
policy files: the notice version in force at `at` is the latest one published on or before that
day (or the newest version a record up to `at` used, if later), and the customer's region is the
one the audit log shows at `at` (customer.created / customer.updated entries carry it); see
`proof_history`.
Preferences (channels switched off, topics) are not part of the proof.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from consentry.core import reads
from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.domain.decision import Reason, Verdict, evaluate
from consentry.domain.errors import Invalid, NotFound
from consentry.domain.purposes import Policy
from consentry.ledger.proof_history import (
    REGION_ACTIONS,
    NoticeShown,
    notice_shown,
    policy_at,
    region_at,
    region_history,
)
from consentry.ledger.records import LedgerRecord, state_of, to_record
from consentry.storage.database import Row

RECORD_ACTIONS = ("consent.recorded", "consent.confirmed")
_LEDGER_CODES = {"granted", "pending", "withdrawn", "denied", "expired", "notice_outdated"}
_DECIDED_BY = {
    "legal_basis": "legal_basis",
    "legitimate_interest": "legitimate_interest",
    "region_default_allow": "region_default",
    "region_default_deny": "region_default",
}


AllowOrDeny = Literal["allow", "deny"]


def allow_or_deny(allowed: bool) -> AllowOrDeny:
    return "allow" if allowed else "deny"


@dataclass(frozen=True, slots=True)
class BackingEntry:
    """An audit_log entry that records a ledger row (same transaction as the row)."""

    seq: int
    at: datetime
    action: str
    actor: str
    hash: str
    # the entry's Merkle inclusion proof in a signed checkpoint: tree_size, leaf_index, proof
    # (hex hashes, bottom up), and the checkpoint itself (root, signature, key_id)
    inclusion: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RecordProof:
    id: UUID
    purpose: str
    channel: str
    decision: str
    legal_basis: str
    source: str
    actor: str
    recorded_at: datetime
    expires_at: datetime | None
    policy_version: str
    evidence: dict[str, Any]  # as stored: hashed IP, user agent, URL without query
    notice: NoticeShown
    audit: tuple[BackingEntry, ...]


@dataclass(frozen=True, slots=True)
class ChannelDecision:
    channel: str
    allowed: bool
    reasons: tuple[Reason, ...]

    @property
    def decision(self) -> AllowOrDeny:
        return allow_or_deny(self.allowed)


@dataclass(frozen=True, slots=True)
class PurposeProof:
    purpose: str
    title: str
    legal_basis: str
    in_policy: bool
    allowed: bool  # the purpose as a whole, at `at`
    reasons: tuple[Reason, ...]
    decided_by: str  # ledger | legal_basis | legitimate_interest | region_default | policy
    notice_in_force: str | None  # the notice version current at `at`
    records: tuple[RecordProof, ...]  # latest per channel as of `at`; purpose-wide ("") first
    channels: tuple[ChannelDecision, ...]  # each channel that has its own record

    @property
    def decision(self) -> AllowOrDeny:
        return allow_or_deny(self.allowed)


@dataclass(frozen=True, slots=True)
class ConsentProof:
    subject_id: UUID
    external_id: str
    at: datetime
    generated_at: datetime
    policy_version: str
    controller: dict[str, str]
    region: str
    regulation: str
    customer_since: datetime
    existed: bool  # False: the customer was created after `at`; everything comes from defaults
    notes: tuple[str, ...]
    purposes: tuple[PurposeProof, ...]


# -- assembling the proof -----------------------------------------------------------------------


def backing_entries(
    rows: Iterable[Row], inclusions: dict[int, dict[str, Any]] | None = None
) -> dict[str, list[BackingEntry]]:
    """Record id -> the consent.recorded / consent.confirmed entries that name it."""
    out: dict[str, list[BackingEntry]] = {}
    for row in rows:
        if row["action"] not in RECORD_ACTIONS:
            continue
        details = json.loads(row["details"] or "{}")
        ids = [d.get("record") for d in details.get("decisions", []) if isinstance(d, dict)]
        ids.append(details.get("record"))
        seq = int(row["seq"])
        entry = BackingEntry(
            seq,
            row["at"],
            row["action"],
            row["actor"],
            str(row["hash"]),
            (inclusions or {}).get(seq),
        )
        for record_id in {i for i in ids if isinstance(i, str)}:
            out.setdefault(record_id, []).append(entry)
    return out


def _record_proof(
    policy: Policy, r: LedgerRecord, audit: dict[str, list[BackingEntry]]
) -> RecordProof:
    return RecordProof(
        r.id,
        r.purpose,
        r.channel,
        r.decision,
        r.legal_basis,
        r.source,
        r.actor,
        r.recorded_at,
        r.expires_at,
        r.policy_version,
        r.evidence,
        notice_shown(policy, r),
        tuple(audit.get(str(r.id), ())),
    )


def _decided_by(verdict: Verdict) -> str:
    code = verdict.reasons[0].code if verdict.reasons else ""
    return "ledger" if code in _LEDGER_CODES else _DECIDED_BY.get(code, "policy")


def _purpose_proof(
    policy: Policy,
    at_policy: Policy,
    name: str,
    region: str,
    at: datetime,
    latest: dict[tuple[str, str], LedgerRecord],
    audit: dict[str, list[BackingEntry]],
) -> PurposeProof:
    states = {k: state_of(r) for k, r in latest.items() if k[0] == name}
    verdict = evaluate(at_policy, region=region, purpose=name, states=states, now=at)
    spec = at_policy.purposes.get(name)
    keys = sorted(states, key=lambda k: k[1])  # "" (purpose-wide) sorts first
    channels = []
    for _, channel in keys:
        if channel:
            v = evaluate(
                at_policy, region=region, purpose=name, channel=channel, states=states, now=at
            )
            channels.append(ChannelDecision(channel, v.allowed, v.reasons))
    return PurposeProof(
        purpose=name,
        title=spec.titles.get(policy.languages[0], name) if spec else name,
        legal_basis=spec.legal_basis.value if spec else states[keys[0]].legal_basis,
        in_policy=spec is not None,
        allowed=verdict.allowed,
        reasons=verdict.reasons,
        decided_by=_decided_by(verdict),
        notice_in_force=spec.current_notice.version if spec else None,
        records=tuple(_record_proof(policy, latest[k], audit) for k in keys),
        channels=tuple(channels),
    )


@dataclass(frozen=True, slots=True)
class _Read:
    subject: Row
    records: list[LedgerRecord]
    audit: list[Row]


def _notes(existed: bool, at: datetime, region: str, current: str, created: datetime) -> list[str]:
    notes = []
    if not existed:
        notes.append(
            f"the customer did not exist yet at {at.isoformat()} (created"
            f" {created.isoformat()}): no decision was recorded, every purpose is decided by"
            f" its legal basis or the default of region {region}"
        )
    if region != current:
        notes.append(f"the customer's region at that time was {region} (now {current})")
    notes.append(
        "the notice in force is the latest version published on or before that day;"
        " channel and topic preferences are not part of this proof"
    )
    return notes


def build(
    policy: Policy,
    subject_id: UUID,
    at: datetime,
    now: datetime,
    read: _Read,
    inclusions: dict[int, dict[str, Any]] | None = None,
) -> ConsentProof:
    latest: dict[tuple[str, str], LedgerRecord] = {}
    for r in read.records:  # oldest first: the last one per key wins
        latest[(r.purpose, r.channel)] = r
    current = str(read.subject["region"])
    region = region_at(region_history(read.audit), at, current)
    created: datetime = read.subject["created_at"]
    existed = created <= at
    at_policy = policy_at(policy, at, read.records)
    audit = backing_entries(read.audit, inclusions)
    names = list(policy.purposes) + sorted({p for p, _ in latest} - set(policy.purposes))
    known = policy.regions.get(region)
    return ConsentProof(
        subject_id=subject_id,
        external_id=str(read.subject["external_id"]),
        at=at,
        generated_at=now,
        policy_version=policy.version,
        controller=dict(policy.controller),
        region=region,
        regulation=known.regulation if known else "unknown",
        customer_since=created,
        existed=existed,
        notes=tuple(_notes(existed, at, region, current, created)),
        purposes=tuple(
            _purpose_proof(policy, at_policy, n, region, at, latest, audit) for n in names
        ),
    )


def check_at(at: datetime | None, now: datetime) -> datetime:
    """`at` in UTC; now when absent; never in the future."""
    if at is None:
        return now
    if at.tzinfo is None or at.utcoffset() is None:
        raise Invalid("at needs a UTC offset (RFC 3339), e.g. 2025-06-01T12:00:00Z", field="at")
    at = at.astimezone(UTC)
    if at > now:
        raise Invalid(
            f"at ({at.isoformat()}) is in the future (the service's time is {now.isoformat()});"
            " a proof can only show what was recorded up to now",
            field="at",
        )
    return at


async def consent_proof(
    core: Core, subject_id: UUID, at: datetime | None, actor: Principal | None
) -> ConsentProof:
    """The consent state of one customer as it stood at `at`; a read by staff is audited."""
    now = core.clock()
    at = check_at(at, now)
    actions = RECORD_ACTIONS + REGION_ACTIONS
    marks = ", ".join("?" for _ in actions)

    async def query(db: reads.Reader) -> _Read:
        subject = await db.fetch(
            "SELECT id, external_id, region, created_at FROM subjects WHERE id = ?", subject_id
        )
        if not subject:
            raise NotFound(f"no customer with id {subject_id}")
        records = await db.fetch(
            "SELECT * FROM consent_records WHERE subject_id = ? AND recorded_at <= ?"
            " ORDER BY recorded_at, id",
            subject_id,
            at,
        )
        audit = await db.fetch(
            "SELECT seq, at, actor, action, details, hash FROM audit_log WHERE target = ?"
            f" AND action IN ({marks}) ORDER BY seq",
            f"subject:{subject_id}",
            *actions,
        )
        return _Read(subject[0], [to_record(r) for r in records], audit)

    read = await reads.read(
        core,
        actor,
        query,
        action="consent_proof.read",
        target=f"subject:{subject_id}",
        details=lambda r: {"at": at.isoformat(), "records": len(r.records)},
    )
    seqs = [int(r["seq"]) for r in read.audit if r["action"] in RECORD_ACTIONS]
    return build(core.policy, subject_id, at, now, read, await inclusion_proofs(core, seqs))


async def inclusion_proofs(core: Core, seqs: list[int]) -> dict[int, dict[str, Any]]:
    """Each entry's inclusion proof in a fresh signed checkpoint (one checkpoint for all)."""
    if not seqs:
        return {}
    cp = await core.checkpointer.checkpoint()
    seqs = [s for s in seqs if s <= cp.tree_size]
    proofs = await core.checkpointer.tree.inclusion_proofs(seqs, cp.tree_size)
    return {
        seq: {
            "tree_size": cp.tree_size,
            "leaf_index": seq - 1,
            "proof": [h.hex() for h in proof],
            "checkpoint": cp.to_json(),
        }
        for seq, proof in zip(seqs, proofs, strict=True)
    }
