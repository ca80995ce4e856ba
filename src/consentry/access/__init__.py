"""The public face of the room: what other rooms may use (the import rules of
docs/architecture.md). Everything else stays inside."""

from __future__ import annotations

from consentry.access.guard import require
from consentry.access.keys import CustomerToken, customer_token_in, issue_customer_token

__all__ = ["CustomerToken", "customer_token_in", "issue_customer_token", "require"]
