"""Wire schemas, written by hand: what every area's answers share (problems, the shown-once
secret, common types), and the conversion of a service's value into its wire schema.

Each area keeps its own wire schemas next to its routes (`access.schemas`, `customers.schemas`,
`ledger.schemas`, `audit_log.schemas`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta, Struct

# defined with the plugin contract (plugin routes answer problems too)
from consentry.plugins.web import FieldError as FieldError
from consentry.plugins.web import Problem as Problem

T = TypeVar("T")

ExternalId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$",
        description="The company's own id for the customer",
    ),
]


def wire(value: Any, schema: type[T]) -> T:
    """A service's value as a wire schema, field by field by name (`msgspec.convert`)."""
    return msgspec.convert(value, schema, from_attributes=True)


class ShownOnce(Struct):
    """An answer holding a secret shown once: its idempotent replay is a 409 with this detail,
    so the secret is never stored (see `api.writes.respond`)."""

    def replay_detail(self) -> str:
        raise NotImplementedError


# -- customer tokens (issued by customers, and by dsr after an email verification) -------------


class TokenIn(Struct, forbid_unknown_fields=True):
    ttl_seconds: Annotated[int, Meta(ge=60, le=86_400)] | None = None


class TokenOut(ShownOnce):
    token: str
    expires_at: datetime

    def replay_detail(self) -> str:
        return (
            "this request already issued a customer token; a token is shown once, in that first"
            " answer, and is not kept. If the answer was lost, ask for another with a new"
            " Idempotency-Key"
        )
