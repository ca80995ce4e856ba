"""What a plugin's routes (Litestar handlers, `register_routes`) may ask for and use.

A handler takes `context: ContextDep` (the `RouteContext` the host binds to the plugin that
registered the route: its gate, its tables, its settings; never another plugin's) and
`principal: PrincipalDep` (who is asking), checks scopes with `require`, and raises the errors
of `consentry.plugins` for problem+json answers. The host implements all of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol, TypeVar

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Dependency, Parameter
from msgspec import Struct

from consentry.domain.principals import Principal, Scope
from consentry.plugins.types import PluginContext

T = TypeVar("T")
MEDIA_TYPE = "application/problem+json"


class FieldError(Struct):
    field: str
    detail: str


class Problem(Struct, omit_defaults=True):
    """An RFC 9457 problem: every error answer of the API, plugin routes included."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None  # every invalid field, on a 422


class RouteContext(PluginContext, Protocol):
    """The `PluginContext` a plugin's route receives, with what only a request has."""

    async def respond(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        call: Callable[[], Awaitable[T]],
        render: Callable[[T], tuple[int, msgspec.Struct]],
    ) -> Response[Any]:
        """Run a write under the request's `Idempotency-Key` (a retry replays the first answer)
        and answer `render(result)`: (status, body)."""
        ...


# skip_validation: the context is handed over as is (it is not a wire shape to check)
ContextDep = Annotated[RouteContext, Dependency(skip_validation=True)]
PrincipalDep = NamedDependency[Principal]
Cursor = Annotated[str | None, Parameter(description="next_cursor from the previous page")]
Limit = Annotated[int, Parameter(ge=1, le=500, description="page size")]


def require(principal: Principal, *scopes: Scope) -> Principal:
    """`Forbidden` (403) unless the principal is an API key with one of `scopes`."""
    principal.require(*scopes)
    return principal


def problem_response(description: str) -> ResponseSpec:
    """An error answer to document on a route (`responses={409: problem_response(...)}`)."""
    return ResponseSpec(
        data_container=Problem,
        description=description,
        media_type=MEDIA_TYPE,
        generate_examples=False,
    )
