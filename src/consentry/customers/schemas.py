"""Wire schemas of customers: the upsert, the record, the list and the search."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from msgspec import Meta, Struct

from consentry.domain.text import clean_keys

AttributeValue = str | int | float | bool | None


class CustomerIn(Struct, forbid_unknown_fields=True):
    region: Annotated[str, Meta(max_length=20)] | None = None
    identities: dict[
        Annotated[str, Meta(max_length=20)], Annotated[str, Meta(max_length=320)] | None
    ] = {}
    attributes: dict[Annotated[str, Meta(max_length=64)], AttributeValue] = {}

    def __post_init__(self) -> None:
        self.attributes = clean_keys(self.attributes, field="attributes")


class CustomerOut(Struct):
    id: UUID
    external_id: str
    region: str
    identities: dict[str, str]
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int
    previously_erased_at: datetime | None = None  # this id belonged to a customer erased then


class CustomerSummary(Struct):
    id: UUID
    external_id: str
    region: str
    created_at: datetime
    updated_at: datetime


class CustomerPage(Struct):
    items: list[CustomerSummary]
    next_cursor: str | None


class CustomerSearch(Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(max_length=320)] | None = None
    phone: Annotated[str, Meta(max_length=40)] | None = None
    reason: Annotated[str, Meta(max_length=200)] | None = None
