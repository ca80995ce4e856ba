"""Canonical JSON: the one byte form of a value that hashes and signatures cover."""

from __future__ import annotations

from typing import Any

import msgspec

_encode = msgspec.json.Encoder(order="sorted").encode


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON: keys sorted, no whitespace, UTF-8 unescaped, control characters as
    \\u00XX; the same bytes as Python's `json.dumps(v, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)` for the values audit entries hold (strings, integers, booleans, null,
    lists and objects), only faster."""
    return _encode(value)
