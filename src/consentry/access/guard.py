"""Who is calling: `Authorization: Bearer <API key | customer token>`, checked before any
route runs; `require` (defined with the plugin contract) checks what a key may do."""

from __future__ import annotations

import contextlib
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.openapi.spec import Components, SecurityScheme

from consentry.access import keys as access
from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.domain.errors import TooManyRequests, Unauthorized
from consentry.http.deps import CoreDep, is_public
from consentry.http.ratelimit import RateLimits, client_address, retry_after
from consentry.plugins.web import require as require  # defined with the plugin contract

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


async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any], core: Core) -> Principal:
    """Check the credential; a client that failed too often meanwhile gets a 429 before its
    credential is looked at, and every failure counts against its address."""
    limits: RateLimits = connection.app.state.limits
    client = client_address(connection.scope)
    _limited(limits.may_authenticate(client), "failed authentications from this address")
    try:
        credential = _bearer(connection)
        if credential.startswith("ck_"):
            principal = await access.authenticate_key(core, credential)
        else:
            principal = access.authenticate_customer(core, credential)
    except Unauthorized:
        limits.failed(client)
        raise
    connection.scope["state"]["principal"] = principal
    connection.scope["state"]["actor"] = principal.actor
    _limited(limits.principal(principal.kind, principal.id), f"requests for this {principal.kind}")
    return principal


def _limited(wait: float, what: str) -> None:
    if wait > 0:
        seconds = retry_after(wait)
        raise TooManyRequests(
            f"too many {what}; retry after {seconds} s (the Retry-After header)",
            retry_after=seconds,
        )


async def authenticate(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """A guard on /v1: it runs before parameters are parsed, so a missing credential is a 401
    before any 422. The docs under /schema and public operations need no credential; on those,
    a request is limited per client address unless it brings a valid credential."""
    if not (connection.scope["path"] + "/").startswith("/v1/"):  # /v1/purposes is /v1/purposes/
        return
    core = connection.app.state.core
    if not (isinstance(handler, HTTPRouteHandler) and is_public(handler)):
        await _authenticate(connection, core)
        return
    if connection.headers.get("authorization", "").strip():
        with contextlib.suppress(Unauthorized):
            await _authenticate(connection, core)
            return
    limits: RateLimits = connection.app.state.limits
    _limited(limits.client(client_address(connection.scope)), "requests from this address")


async def provide_principal(request: Request[Any, Any, Any], core: CoreDep) -> Principal:
    """The principal the guard found (or, on a public route that asks, authenticate now)."""
    found = request.scope["state"].get("principal")
    return found if isinstance(found, Principal) else await _authenticate(request, core)
