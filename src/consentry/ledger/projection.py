"""The current-state table is a projection of the ledger; this rebuilds it and compares."""

from __future__ import annotations

from typing import Any

from consentry.core.runtime import Core
from consentry.domain.consent import state_key

_COLUMNS = (
    "subject_id",
    "purpose",
    "channel",
    "decision",
    "legal_basis",
    "notice_version",
    "source",
    "record_id",
    "recorded_at",
    "expires_at",
)


async def rebuild_from_ledger(core: Core) -> dict[str, dict[str, Any]]:
    """The state the ledger implies: per (subject, purpose, channel) its latest record."""
    rows = await core.db.fetch(
        "SELECT id AS record_id, subject_id, purpose, channel, decision, legal_basis,"
        " notice_version, source, recorded_at, expires_at FROM consent_records"
        " ORDER BY recorded_at, id"
    )
    state: dict[str, dict[str, Any]] = {}
    for row in rows:
        state[state_key(row["subject_id"], row["purpose"], row["channel"])] = {
            c: row[c] for c in _COLUMNS
        }
    return state


async def stored_state(core: Core) -> dict[str, dict[str, Any]]:
    rows = await core.db.fetch("SELECT key, " + ", ".join(_COLUMNS) + " FROM consent_state")
    return {row["key"]: {c: row[c] for c in _COLUMNS} for row in rows}


async def drift(core: Core) -> list[str]:
    """Keys where the stored state differs from the ledger's; empty when they agree."""
    expected, stored = await rebuild_from_ledger(core), await stored_state(core)
    return sorted(k for k in expected.keys() | stored.keys() if expected.get(k) != stored.get(k))
