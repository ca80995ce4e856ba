"""Opaque cursors: the sort key of the last item, so pages stay stable while rows are added."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from consentry.domain.errors import Invalid

T = TypeVar("T")
MAX_LIMIT = 500
_BAD_CURSOR = "cursor is not one this service issued; start again without it"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(list(values), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, json.JSONDecodeError):
        raise Invalid(
            "cursor is not one this service issued; start again without it", field="cursor"
        ) from None
    if not isinstance(values, list) or len(values) != arity:
        raise Invalid(
            "cursor is not one this service issued; start again without it", field="cursor"
        )
    return values


def decode_time_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    """A cursor of (time, id), as lists sorted by time then id use."""
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    try:
        return datetime.fromisoformat(str(values[0])), UUID(str(values[1]))
    except ValueError:
        raise Invalid(_BAD_CURSOR, field="cursor") from None


def time_key(at: datetime, item_id: UUID) -> tuple[str, str]:
    return at.isoformat(), str(item_id)


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def page_of(rows: list[T], limit: int, key: Any) -> Page[T]:
    """Rows were fetched with limit + 1: the extra one says whether another page exists."""
    if len(rows) <= limit:
        return Page(rows, None)
    items = rows[:limit]
    return Page(items, encode_cursor(*key(items[-1])))
