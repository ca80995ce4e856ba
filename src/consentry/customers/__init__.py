"""The public face of the room: what other rooms may use (the import rules of
docs/architecture.md). Everything else stays inside."""

from __future__ import annotations

from consentry.customers.records import (
    check_external_id,
    data_key,
    decode_subject,
    me,
    resolve,
)
from consentry.customers.tombstones import missing

__all__ = ["check_external_id", "data_key", "decode_subject", "me", "missing", "resolve"]
