"""What handlers receive by injection, marked explicitly (Litestar 3 drops inferred ones)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import Parameter, PathParameter

from consentry.services.core import Core
from consentry.services.principals import Principal

CoreDep = NamedDependency[Core]
PrincipalDep = NamedDependency[Principal]
ClientDep = NamedDependency[str]  # the client's address, from `client_address`
ExternalIdPath = Annotated[
    str,
    PathParameter(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$",
        max_length=200,
        description="The company's own id for the customer",
    ),
]
Cursor = Annotated[str | None, Parameter(description="next_cursor from the previous page")]
Limit = Annotated[int, Parameter(ge=1, le=500, description="page size")]


def client_address(request: Request[Any, Any, Any]) -> str:
    """The address the request came from, as the server saw it (ASGI `client`).

    The one place that says who the client is, for the limits keyed by it: trusting forwarded
    headers from configured proxies belongs here.
    """
    client = request.client
    return client.host if client is not None and client.host else "unknown"
