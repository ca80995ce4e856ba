"""Erased customers leave a tombstone: a keyed hash of their external id, no personal data.

A later lookup or import of the same external id is recognised: reads answer 410 with when and
under which request the customer was erased; a new customer with that id is flagged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from consentry.core.runtime import Core
from consentry.crypto.blind_index import external_id_hash
from consentry.domain.errors import Gone, NotFound


@dataclass(frozen=True, slots=True)
class Tombstone:
    subject_id: UUID
    request_id: UUID
    erased_at: datetime
    certificate: str


async def tombstone(core: Core, external_id: str) -> Tombstone | None:
    row = await core.db.fetchrow(
        "SELECT * FROM erasures WHERE external_id_hash = ?",
        external_id_hash(core.secrets.index_key, external_id),
    )
    if row is None:
        return None
    return Tombstone(
        UUID(str(row["subject_id"])),
        UUID(str(row["request_id"])),
        row["erased_at"],
        row["certificate"],
    )


def erased_error(external_id: str, stone: Tombstone) -> Gone:
    return Gone(
        f"customer '{external_id}' was erased on {stone.erased_at:%Y-%m-%d} (request"
        f" {stone.request_id}); nothing about them is held any more"
    )


async def missing(core: Core, external_id: str) -> NotFound | Gone:
    """The error for an external id with no customer: erased (410) or never known (404)."""
    stone = await tombstone(core, external_id)
    if stone is not None:
        return erased_error(external_id, stone)
    return NotFound(f"no customer with external_id '{external_id}'")
