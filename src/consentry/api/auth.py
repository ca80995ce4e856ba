"""Who is calling: `Authorization: Bearer <API key | customer token>`."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi.spec import Components, SecurityScheme

from consentry.api.deps import CoreDep
from consentry.services import access
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


def _bearer(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("send 'Authorization: Bearer <API key or customer token>'")
    return credential.strip()


async def provide_principal(request: Request[Any, Any, Any], core: CoreDep) -> Principal:
    """Depends on `core` so the two resolve one after the other, not in a task group."""
    credential = _bearer(request)
    if credential.startswith("ck_"):
        principal = await access.authenticate_key(core, credential)
    else:
        principal = access.authenticate_customer(core, credential)
    request.scope["state"]["actor"] = principal.actor
    return principal


def require(principal: Principal, *scopes: Scope) -> Principal:
    principal.require(*scopes)
    return principal


def require_customer(principal: Principal) -> Principal:
    if principal.kind != "customer":
        raise Forbidden("this endpoint is for customers; use a customer token")
    return principal
