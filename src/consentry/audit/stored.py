"""An audit entry as the database stores it: its columns, read back into an `AuditEntry`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from consentry.audit.chain import AuditEntry

ROW_COLUMNS = "seq, at, actor, action, target, details, policy_version, prev_hash, hash"


def at_text(at: Any) -> str:
    """The entry's time as hashed, from a datetime or SQLite's stored `str(datetime)`."""
    if isinstance(at, datetime):
        return at.isoformat(timespec="microseconds")
    text = str(at)
    if len(text) > 19 and text[19] != ".":
        text = f"{text[:19]}.000000{text[19:]}"
    return f"{text[:10]}T{text[11:]}"


def row_entry(row: tuple[Any, ...]) -> AuditEntry:
    """A raw row parsed into an entry (`ValueError` if a field cannot be read)."""
    seq, at, actor, action, target, details, policy_version, prev_hash, stored = row
    when = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
    parsed = json.loads(details)
    if not isinstance(parsed, dict):
        raise ValueError("details is not a JSON object")
    return AuditEntry(
        int(seq), when, actor, action, target, parsed, policy_version, prev_hash, stored
    )
