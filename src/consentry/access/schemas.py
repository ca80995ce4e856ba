"""Wire schemas of access: API keys (customer tokens, answered by two areas, are in
`http.schemas`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from consentry.domain.text import clean_name
from consentry.http.schemas import ShownOnce


class ApiKeyIn(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    scopes: Annotated[
        list[
            Literal["admin", "compliance:read", "compliance:write", "backend:write", "backend:read"]
        ],
        Meta(min_length=1, max_length=5),
    ]

    def __post_init__(self) -> None:
        self.name = clean_name(self.name, field="name")


class ApiKeyOut(Struct):
    id: str
    name: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class NewApiKeyOut(ShownOnce):
    key: str
    api_key: ApiKeyOut

    def replay_detail(self) -> str:
        key_id = self.api_key.id
        return (
            f"this request already created API key {key_id}; its secret was shown once, in"
            " that first answer, and is not kept. If the answer was lost, revoke the key"
            f" (DELETE /v1/api-keys/{key_id}) and create another with a new Idempotency-Key"
        )


class ApiKeyPage(Struct):
    items: list[ApiKeyOut]
    next_cursor: str | None
