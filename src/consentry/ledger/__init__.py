"""The public face of the room: what other rooms may use (the import rules of
docs/architecture.md). Everything else stays inside."""

from __future__ import annotations

from consentry.ledger.consents import opt_out_of_sale
from consentry.ledger.preferences import document_to_preferences
from consentry.ledger.records import LedgerRecord, to_state

__all__ = ["LedgerRecord", "document_to_preferences", "opt_out_of_sale", "to_state"]
