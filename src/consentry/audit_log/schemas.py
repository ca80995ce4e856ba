"""Wire schemas of the audit log: entries, checkpoints, Merkle proofs, public keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from msgspec import Struct


class AuditEntryOut(Struct):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    policy_version: str
    prev_hash: str
    hash: str
    # details.reason_sealed opened with the customer's key; null once they are erased
    reason: str | None = None


class AuditPage(Struct):
    items: list[AuditEntryOut]
    next_cursor: str | None


class CheckpointOut(Struct):
    tree_size: int
    root: str
    head_hash: str
    at: datetime
    key_id: str
    signature: str


class CheckpointPage(Struct):
    items: list[CheckpointOut]
    next_cursor: str | None


class InclusionProofOut(Struct):
    seq: int
    leaf_index: int
    entry_hash: str
    proof: list[str]
    checkpoint: CheckpointOut


class ConsistencyProofOut(Struct):
    from_size: int
    to_size: int
    proof: list[str]
    old: CheckpointOut
    new: CheckpointOut


class PublicKeyOut(Struct):
    key_id: str
    pem: str
    jwk: dict[str, str]
    created_at: datetime
    retired_at: datetime | None


class PublicKeyList(Struct):
    current: str
    items: list[PublicKeyOut]
