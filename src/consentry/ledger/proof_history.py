"""What a proof of consent reconstructs from history, since the service keeps no copy of older
policy files: the customer's region at a past moment (from the audit log), the notice version in
force then, and the notice a ledger record was given under (its text from the current policy).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from consentry.core import reads
from consentry.domain.purposes import NoticeVersion, Policy, Purpose
from consentry.ledger.records import LedgerRecord
from consentry.storage.database import Row

REGION_ACTIONS = ("customer.created", "customer.updated")


@dataclass(frozen=True, slots=True)
class NoticeShown:
    """The notice a record was given under, with its text looked up in the current policy."""

    version: str
    language: str
    content_hash: str  # as recorded in the ledger
    text: str | None  # None when the version (or language) is not in the current policy file
    in_policy: bool
    hash_matches: bool  # the policy's text for this version hashes to what was recorded
    note: str


# -- the customer's region over time ------------------------------------------------------------


def region_history(rows: Iterable[Row]) -> list[tuple[datetime, str]]:
    """(time, region) from customer.created/updated audit rows, oldest first."""
    out = []
    for row in rows:
        if row["action"] in REGION_ACTIONS:
            region = json.loads(row["details"] or "{}").get("region")
            if isinstance(region, str):
                out.append((row["at"], region))
    return out


def region_at(history: Sequence[tuple[datetime, str]], at: datetime, current: str) -> str:
    """The region at `at`; before the first entry, the one the customer was created with."""
    if not history:
        return current
    found = history[0][1]
    for when, region in history:
        if when <= at:
            found = region
    return found


async def region_rows(db: reads.Reader, subject_id: UUID) -> list[Row]:
    marks = ", ".join("?" for _ in REGION_ACTIONS)
    return await db.fetch(
        "SELECT seq, at, action, details FROM audit_log WHERE target = ?"
        f" AND action IN ({marks}) ORDER BY seq",
        f"subject:{subject_id}",
        *REGION_ACTIONS,
    )


# -- notices -------------------------------------------------------------------------------------


def notice_shown(policy: Policy, r: LedgerRecord) -> NoticeShown:
    spec = policy.purposes.get(r.purpose)
    notice = spec.notice(r.notice_version) if spec else None
    base = NoticeShown(r.notice_version, r.language, r.notice_hash, None, False, False, "")
    if spec is None:
        return replace(base, note=f"purpose '{r.purpose}' is not in the current policy file")
    if notice is None:
        return replace(
            base,
            note=f"notice version '{r.notice_version}' is not in the current policy file;"
            " its text cannot be shown, only its recorded hash",
        )
    text = notice.texts.get(r.language)
    if text is None:
        return replace(
            base,
            in_policy=True,
            note=f"the current policy has no '{r.language}' text for notice version"
            f" '{r.notice_version}'",
        )
    matches = notice.content_hash(r.language) == r.notice_hash
    note = (
        "text from the current policy file; its hash matches the one recorded"
        if matches
        else "WARNING: the text in the current policy file does not hash to the recorded"
        " hash: the published text was edited after this record"
    )
    return replace(base, text=text, in_policy=True, hash_matches=matches, note=note)


def _notice_in_force(spec: Purpose, at: datetime, used: set[str]) -> int:
    """Index of the notice current at `at`: by published date, or a later one a record used."""
    day = at.date().isoformat()
    index = 0
    for i, n in enumerate(spec.notices):
        if not n.published or n.published <= day or n.version in used:
            index = i
    return index


def policy_at(policy: Policy, at: datetime, records: Sequence[LedgerRecord]) -> Policy:
    """The policy with each purpose's notices cut back to the one in force at `at`."""
    purposes = {}
    for name, spec in policy.purposes.items():
        used = {r.notice_version for r in records if r.purpose == name}
        notices: tuple[NoticeVersion, ...] = spec.notices[: _notice_in_force(spec, at, used) + 1]
        purposes[name] = replace(spec, notices=notices)
    return replace(policy, purposes=purposes)
