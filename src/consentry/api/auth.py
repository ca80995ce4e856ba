"""Who is calling: `Authorization: Bearer <API key | customer token>`."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.openapi.spec import Components, SecurityScheme

from consentry.api.deps import CoreDep
from consentry.services import access
from consentry.services.core import Core
from consentry.services.errors import Forbidden, Unauthorized
from consentry.services.principals import Principal, Scope

SECURITY_COMPONENTS = Components(
    security_schemes={
        "bearer": SecurityScheme(
            type="http",
            scheme="bearer",
            description="An API key (ck_<id>_<secret>) or a customer token",
        ),
    }
)
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("send 'Authorization: Bearer <API key or customer token>'")
    return credential.strip()


def is_public(handler: HTTPRouteHandler) -> bool:
    """Declared `security=[]` and no layer adds a requirement: no credential is needed."""
    return handler.security is not None and not handler.resolve_security()


async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any], core: Core) -> Principal:
    credential = _bearer(connection)
    if credential.startswith("ck_"):
        principal = await access.authenticate_key(core, credential)
    else:
        principal = access.authenticate_customer(core, credential)
    connection.scope["state"]["principal"] = principal
    connection.scope["state"]["actor"] = principal.actor
    return principal


async def authenticate(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """A guard on /v1: it runs before parameters are parsed, so a missing credential is a 401
    before any 422. The docs under /schema and public operations need no credential."""
    public = isinstance(handler, HTTPRouteHandler) and is_public(handler)
    if connection.scope["path"].startswith("/v1/") and not public:
        await _authenticate(connection, connection.app.state.core)


async def provide_principal(request: Request[Any, Any, Any], core: CoreDep) -> Principal:
    """The principal the guard found (or, on a public route that asks, authenticate now)."""
    found = request.scope["state"].get("principal")
    return found if isinstance(found, Principal) else await _authenticate(request, core)


def require(principal: Principal, *scopes: Scope) -> Principal:
    principal.require(*scopes)
    return principal


def require_customer(principal: Principal) -> Principal:
    if principal.kind != "customer":
        raise Forbidden("this endpoint is for customers; use a customer token")
    return principal
