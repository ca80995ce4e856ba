"""Segments: a JSON filter language over attributes and events, compiled to SQL, whose members
are only the customers whose consent covers the segment's purpose. See `filters` (the grammar),
`sql` and `consent_sql` (compilation), `store`, `routes` and `hooks`."""

from consentry_segments.hooks import (
    dsr_erase,
    dsr_export,
    register_capabilities,
    register_routes,
    register_tables,
)

__version__ = "0.2.0"

__all__ = [
    "dsr_erase",
    "dsr_export",
    "register_capabilities",
    "register_routes",
    "register_tables",
]
