"""The JSONL export format: a signed header, then one entry per line.

The header names the checkpoint the export is proven against and exactly which sequence numbers
follow (as ranges), and is signed with the service key: a verifier knows what must come next at
every line, so a line deleted, inserted or moved is caught at its sequence number, and a file cut
short is caught at the first missing one. An export of the whole log (no filter) carries no
proofs: the verifier rebuilds the tree. A filtered export (a slice) carries an inclusion proof on
every entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from consentry.audit.chain import AuditEntry
from consentry.audit.checkpoints import Checkpoint
from consentry.crypto.canonical import canonical_json
from consentry.crypto.signing import KeyRing, SignatureError, SigningKey, b64url, b64url_decode

FORMAT = "consentry-audit-export/v1"

CSV_COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "target",
    "details",
    "policy_version",
    "prev_hash",
    "hash",
    "proof",
)


def seq_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Ascending sequence numbers as [[first, last], ...] runs."""
    return extend_ranges([], seqs)


def extend_ranges(ranges: list[list[int]], seqs: Iterable[int]) -> list[list[int]]:
    """Add ascending sequence numbers to runs already built (a chunk at a time)."""
    for seq in seqs:
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


def expand(ranges: list[list[int]]) -> Iterator[int]:
    for first, last in ranges:
        yield from range(first, last + 1)


def _signed_part(header: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in header.items() if k != "signature"})


def make_header(
    key: SigningKey,
    checkpoint: Checkpoint,
    *,
    filters: dict[str, Any],
    seqs: list[list[int]],
    proofs: bool,
    generated_at: datetime,
) -> dict[str, Any]:
    header: dict[str, Any] = {
        "type": "header",
        "format": FORMAT,
        "generated_at": generated_at.isoformat(timespec="microseconds"),
        "filters": filters,
        "proofs": proofs,
        "checkpoint": checkpoint.to_json(),
        "count": sum(last - first + 1 for first, last in seqs),
        "seqs": seqs,
        "key_id": key.key_id,
    }
    header["signature"] = b64url(key.sign(_signed_part(header)))
    return header


def check_header(header: dict[str, Any], keys: KeyRing) -> str | None:
    """None if the header is well formed and signed by a known key, else what is wrong."""
    if header.get("type") != "header" or header.get("format") != FORMAT:
        return f"the first line is not a {FORMAT} header"
    try:
        key = keys.get(str(header.get("key_id", "")))
        signature = b64url_decode(str(header.get("signature", "")))
    except SignatureError as exc:
        return f"export header: {exc}"
    if not key.verify(signature, _signed_part(header)):
        return "export header: the signature does not verify (the header was altered)"
    seqs = header.get("seqs")
    if not isinstance(seqs, list) or not all(
        isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) for x in r) for r in seqs
    ):
        return "export header: seqs must be a list of [first, last] pairs"
    return None


def entry_line(entry: AuditEntry, proof: list[bytes] | None) -> dict[str, Any]:
    line = {"type": "entry", **entry.body(), "prev_hash": entry.prev_hash, "hash": entry.hash}
    if proof is not None:
        line["proof"] = [h.hex() for h in proof]
    return line


def csv_row(entry: AuditEntry, proof: list[bytes] | None) -> list[str]:
    body = entry.body()
    return [
        str(entry.seq),
        body["at"],
        entry.actor,
        entry.action,
        entry.target,
        canonical_json(entry.details).decode(),
        entry.policy_version,
        entry.prev_hash,
        entry.hash,
        " ".join(h.hex() for h in proof or ()),
    ]


def parse_entry(doc: Any) -> tuple[AuditEntry, list[bytes] | None]:
    """An entry line back into an entry and its proof; `ValueError` naming what is malformed."""
    if not isinstance(doc, dict) or doc.get("type") != "entry":
        raise ValueError("not an entry line")
    try:
        seq = doc["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("seq must be an integer")
        details = doc["details"]
        if not isinstance(details, dict):
            raise ValueError("details must be an object")
        entry = AuditEntry(
            seq,
            datetime.fromisoformat(doc["at"]),
            _text(doc, "actor"),
            _text(doc, "action"),
            _text(doc, "target"),
            details,
            _text(doc, "policy_version"),
            _text(doc, "prev_hash"),
            _text(doc, "hash"),
        )
        proof = doc.get("proof")
        if proof is None:
            return entry, None
        if not isinstance(proof, list) or not all(isinstance(h, str) for h in proof):
            raise ValueError("proof must be a list of hex hashes")
        return entry, [bytes.fromhex(h) for h in proof]
    except KeyError as exc:
        raise ValueError(f"field {exc.args[0]} is missing") from None
    except TypeError:
        raise ValueError("a field has the wrong type") from None


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value
