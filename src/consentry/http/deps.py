"""What handlers receive by injection, marked explicitly (Litestar 3 drops inferred ones)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from litestar import Request
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema
from litestar.params import Dependency, PathParameter
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from consentry.core.runtime import Core
from consentry.http import ratelimit

# defined with the plugin contract (plugin routes take them too)
from consentry.plugins.web import Cursor as Cursor
from consentry.plugins.web import Limit as Limit
from consentry.plugins.web import PrincipalDep as PrincipalDep

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

D = TypeVar("D", bound=datetime)
# skip_validation: the core is handed over as is (its fields are not a wire shape to check)
CoreDep = Annotated[Core, Dependency(skip_validation=True)]
ClientDep = NamedDependency[str]  # the client's address, from `client_address`
ExternalIdPath = Annotated[
    str,
    PathParameter(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$",
        max_length=200,
        description="The company's own id for the customer",
    ),
]


class Instant(datetime):
    """A time in a query string: any RFC 3339 date-time (with its offset), or a date meaning its
    midnight UTC. Handlers hand services `plain(...)` of it."""


INSTANT_HELP = "expected an RFC 3339 date-time such as 2026-12-05T10:00:00Z, or a date: 2026-12-05"


def decode_instant(_: type, value: Any) -> Instant:
    text = value.strip() if isinstance(value, str) else ""
    if not 10 <= len(text) <= 40:
        raise ValueError(INSTANT_HELP)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(INSTANT_HELP) from None
    if when.tzinfo is None and len(text) > 10:  # a time of day with no offset is ambiguous
        raise ValueError(f"a time needs its UTC offset (Z or +hh:mm): {INSTANT_HELP}")
    return _copy(Instant, when, when.tzinfo or UTC)


def plain(when: datetime | None) -> datetime | None:
    """A plain datetime (the storage layer adapts exact types only)."""
    if when is None or type(when) is datetime:
        return when
    return _copy(datetime, when, when.tzinfo)


def _copy(cls: type[D], when: datetime, tzinfo: tzinfo | None) -> D:
    return cls(
        when.year,
        when.month,
        when.day,
        when.hour,
        when.minute,
        when.second,
        when.microsecond,
        tzinfo=tzinfo,
    )


TYPE_DECODERS = [(lambda tp: tp is Instant, decode_instant)]


class InstantSchema(OpenAPISchemaPlugin):
    """Instant in the OpenAPI document: a date-time or a date."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is Instant

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        return Schema(
            one_of=[
                Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
                Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE),
            ]
        )


def client_address(request: Request[Any, Any, Any]) -> str:
    """The client's address, for limits keyed by it (see `ratelimit.client_address`)."""
    return ratelimit.client_address(request.scope)


def is_public(handler: HTTPRouteHandler) -> bool:
    """Declared `security=[]` and no layer adds a requirement: no credential is needed."""
    return handler.security is not None and not handler.resolve_security()
