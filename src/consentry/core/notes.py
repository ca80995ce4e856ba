"""Free text in audit entries, such as a staff member's reason for reading a customer, is sealed
with that customer's data key (AES-256-GCM, bound to the customer): the immutable log never
holds what someone typed in clear, compliance reads it opened while the customer lives, and
erasure (destroying the key) leaves it unreadable while the chain still verifies.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from uuid import UUID

from consentry.audit.chain import AuditEntry
from consentry.core.runtime import Core
from consentry.crypto.envelope import DecryptionError, decrypt, encrypt

REASON = "reason_sealed"  # the details key that holds a sealed reason


def _aad(subject_id: UUID | str) -> str:
    return f"audit:reason:{subject_id}"


def seal_reason(dek: bytes, subject_id: UUID, reason: str) -> dict[str, str]:
    """Audit details holding `reason` sealed for this customer."""
    blob = encrypt(dek, reason.encode("utf-8"), aad=_aad(subject_id))
    return {REASON: base64.b64encode(blob).decode("ascii")}


async def reasons(core: Core, entries: Iterable[AuditEntry]) -> dict[int, str]:
    """The opened reasons of these entries, by seq; an erased customer's stay closed."""
    sealed = {
        e.seq: (e.target.removeprefix("subject:"), str(e.details[REASON]))
        for e in entries
        if isinstance(e.details, dict) and REASON in e.details and e.target.startswith("subject:")
    }
    if not sealed:
        return {}
    keys = await core.keys.get_many({subject for subject, _ in sealed.values()})
    opened: dict[int, str] = {}
    for seq, (subject, text) in sealed.items():
        dek = keys.get(subject)
        if dek is None:
            continue
        try:
            opened[seq] = decrypt(dek, base64.b64decode(text), aad=_aad(subject)).decode()
        except (DecryptionError, ValueError):
            continue  # not ours to show: leave it closed
    return opened
