"""The public face of the room: what other rooms may use (the import rules of
docs/architecture.md). Everything else stays inside."""

from __future__ import annotations

from consentry.host.manager import Plugins

__all__ = ["Plugins"]
