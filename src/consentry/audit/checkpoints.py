"""Signed checkpoints (tree heads): what the service commits to, and how anyone checks it.

A checkpoint says "the first `tree_size` audit entries have Merkle root `root`, and the last of
them has chain hash `head_hash`", at a time, signed with the service's Ed25519 key. The signed
message is the canonical JSON of those fields under a fixed `origin`, so a checkpoint signature
can never be mistaken for any other signature the key makes (receipts are JWS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.crypto.canonical import canonical_json
from consentry.crypto.signing import KeyRing, SignatureError, SigningKey, b64url, b64url_decode

ORIGIN = "consentry-audit-checkpoint/v1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    tree_size: int
    root: str  # hex
    head_hash: str  # hex chain hash of entry `tree_size` (GENESIS_HASH when empty)
    at: datetime
    key_id: str
    signature: str  # base64url Ed25519 signature over `message()`

    def message(self) -> bytes:
        return checkpoint_message(self.tree_size, self.root, self.head_hash, self.at)

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root": self.root,
            "head_hash": self.head_hash,
            "at": self.at.isoformat(timespec="microseconds"),
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, doc: Any) -> Checkpoint:
        """Parse a checkpoint; `ValueError` naming the field that is missing or malformed."""
        if not isinstance(doc, dict):
            raise ValueError("a checkpoint is a JSON object")
        try:
            size = doc["tree_size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ValueError("checkpoint tree_size must be a non-negative integer")
            for name in ("root", "head_hash"):
                if not _is_hex64(doc[name]):
                    raise ValueError(f"checkpoint {name} must be 64 hex characters")
            return cls(
                size,
                doc["root"],
                doc["head_hash"],
                datetime.fromisoformat(doc["at"]),
                str(doc["key_id"]),
                str(doc["signature"]),
            )
        except KeyError as exc:
            raise ValueError(f"checkpoint field {exc.args[0]} is missing") from None
        except TypeError:
            raise ValueError("checkpoint at must be an RFC 3339 time") from None


def _is_hex64(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def checkpoint_message(tree_size: int, root: str, head_hash: str, at: datetime) -> bytes:
    return canonical_json(
        {
            "origin": ORIGIN,
            "tree_size": tree_size,
            "root": root,
            "head_hash": head_hash,
            "at": at.isoformat(timespec="microseconds"),
        }
    )


def sign_checkpoint(
    key: SigningKey, tree_size: int, root: str, head_hash: str, at: datetime
) -> Checkpoint:
    signature = b64url(key.sign(checkpoint_message(tree_size, root, head_hash, at)))
    return Checkpoint(tree_size, root, head_hash, at, key.key_id, signature)


def check_signature(checkpoint: Checkpoint, keys: KeyRing) -> str | None:
    """None if the checkpoint's signature verifies with a known key, else why not."""
    try:
        key = keys.get(checkpoint.key_id)
        signature = b64url_decode(checkpoint.signature)
    except SignatureError as exc:
        return f"checkpoint at size {checkpoint.tree_size}: {exc}"
    if not key.verify(signature, checkpoint.message()):
        return (
            f"checkpoint at size {checkpoint.tree_size}: the signature does not verify"
            f" with key {checkpoint.key_id}"
        )
    return None
