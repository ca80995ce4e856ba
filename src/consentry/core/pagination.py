"""Opaque cursors and pages (they live in `consentry.domain.pagination`, below the plugin
contract, which hands them to plugins too)."""

from consentry.domain.pagination import (
    MAX_LIMIT,
    Page,
    check_limit,
    decode_cursor,
    decode_time_cursor,
    encode_cursor,
    page_of,
    time_key,
)

__all__ = [
    "MAX_LIMIT",
    "Page",
    "check_limit",
    "decode_cursor",
    "decode_time_cursor",
    "encode_cursor",
    "page_of",
    "time_key",
]
