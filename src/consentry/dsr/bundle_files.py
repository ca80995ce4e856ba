"""The files of an export bundle: their names, media types, and how their JSON is written.

What the builder (`bundle`) and the summary page (`bundle_page`) share; pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

import msgspec

FORMAT = "consentry-export/1"

MANIFEST = "manifest.json"
SUMMARY = "summary.html"
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"

SECTION_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
RESERVED_SECTIONS = frozenset({"manifest"})  # manifest.json is the manifest's own file


class BundleError(ValueError):
    """A bundle that cannot be built or does not check out; the message names the file."""


def json_default(value: Any, _encode: Callable[[Any], bytes] = msgspec.json.encode) -> Any:
    """Dates, times and UUIDs as ISO 8601 text; anything else is not JSON."""
    if type(value) is datetime and value.tzinfo is UTC:
        # The common case, tens of thousands of times per bundle: msgspec writes the same text
        # as isoformat() (with "Z" for "+00:00") in a tenth of the time.
        return _encode(value)[1:-2].decode() + "+00:00"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"a value of type {type(value).__name__} is not JSON-serialisable")


def dumps(data: Any, file: str) -> bytes:
    """Data as UTF-8 JSON, exactly as `json.dumps(..., indent=2, sort_keys=True,
    ensure_ascii=False)` writes it.

    The standard library's indenting encoder is pure Python and too slow for tens of thousands
    of events, so its C encoder writes the data compactly (what is serialisable, and how, is
    the standard library's) and msgspec only re-indents it, copying every token verbatim.
    """
    try:
        compact = json.dumps(
            data,
            ensure_ascii=False,
            separators=(",", ":"),
            sort_keys=True,
            allow_nan=False,
            default=json_default,
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise BundleError(f"{file}: the data cannot be written as JSON: {exc}") from None
    return msgspec.json.format(utf8(compact, file), indent=2)


def utf8(text: str, file: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise BundleError(f"{file}: the text cannot be written as UTF-8: {exc}") from None


def media_type(name: str) -> str:
    return HTML_TYPE if name.endswith(".html") else JSON_TYPE


def allowed_file_name(name: str) -> bool:
    if name == SUMMARY:
        return True
    if name.startswith("plugins/") and name.endswith(".json"):
        return bool(PLUGIN_NAME.fullmatch(name[len("plugins/") : -len(".json")]))
    if name.endswith(".json"):
        stem = name[: -len(".json")]
        return bool(SECTION_NAME.fullmatch(stem)) and stem not in RESERVED_SECTIONS
    return False
