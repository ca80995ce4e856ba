"""The hash chain: each audit entry's hash covers the previous hash and its own canonical form.

Entries hold no personal data in clear: pseudonymous subject ids, field names, hashes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.crypto.canonical import canonical_json

GENESIS_HASH = "0" * 64


def purposes_of(details: dict[str, Any]) -> str:
    """The purposes an entry's details name, as ",a,b," for filtering by purpose."""
    names: set[str] = set()
    for key in ("purpose", "purposes"):
        value = details.get(key)
        if isinstance(value, str):
            names.add(value)
        elif isinstance(value, list):
            names.update(v for v in value if isinstance(v, str))
    for item in details.get("decisions") or ():
        if isinstance(item, dict) and isinstance(item.get("purpose"), str):
            names.add(item["purpose"])
    return f",{','.join(sorted(names))}," if names else ""


@dataclass(frozen=True, slots=True)
class AuditDraft:
    """What a change wants recorded; the writer gives it a place in the chain."""

    actor: str
    action: str
    target: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    policy_version: str
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        return entry_body(
            self.seq,
            self.at,
            self.actor,
            self.action,
            self.target,
            self.details,
            self.policy_version,
        )


def entry_body(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
    policy_version: str,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
        "policy_version": policy_version,
    }


def link_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical_json(body)).hexdigest()


def chain(
    drafts: list[AuditDraft], *, head_seq: int, head_hash: str, at: datetime, policy_version: str
) -> list[AuditEntry]:
    """Place drafts after the head, in order."""
    entries = []
    for draft in drafts:
        head_seq += 1
        body = entry_body(
            head_seq, at, draft.actor, draft.action, draft.target, draft.details, policy_version
        )
        digest = link_hash(head_hash, body)
        entries.append(
            AuditEntry(
                head_seq,
                at,
                draft.actor,
                draft.action,
                draft.target,
                draft.details,
                policy_version,
                head_hash,
                digest,
            )
        )
        head_hash = digest
    return entries


@dataclass(frozen=True, slots=True)
class Break:
    seq: int
    expected: str
    found: str


def verify(
    entries: list[AuditEntry], *, prev_hash: str = GENESIS_HASH, start: int = 1
) -> Break | None:
    """The first broken link, or None if the entries form an unbroken chain from `start`."""
    expected_seq = start
    for entry in entries:
        if entry.seq != expected_seq:
            return Break(expected_seq, f"seq {expected_seq}", f"seq {entry.seq}")
        if entry.prev_hash != prev_hash:
            return Break(entry.seq, f"prev_hash {prev_hash}", f"prev_hash {entry.prev_hash}")
        digest = link_hash(prev_hash, entry.body())
        if digest != entry.hash:
            return Break(entry.seq, f"hash {digest}", f"hash {entry.hash}")
        prev_hash = digest
        expected_seq += 1
    return None
