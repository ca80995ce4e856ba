"""API keys: create (shown once), list, revoke. Admin only."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from consentry.access import keys as access
from consentry.access import schemas as s
from consentry.access.guard import require
from consentry.core.principals import Scope
from consentry.http.deps import CoreDep, Cursor, Limit, PrincipalDep
from consentry.http.schemas import wire
from consentry.http.writes import respond


class ApiKeyController(Controller):
    path = "/v1/api-keys"
    tags = ["access"]

    @post(
        "/",
        summary="Create an API key",
        description="The key is shown once; only its hash is stored. Scopes: admin,"
        " compliance:read, compliance:write, backend:write, backend:read. A retry with the same"
        " Idempotency-Key answers 409 naming the key: its secret is not shown again.",
        operation_id="createApiKey",
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        data: JSONBody[s.ApiKeyIn],
    ) -> Response[s.NewApiKeyOut]:
        require(principal, Scope.ADMIN)
        return await respond(
            request,
            principal,
            lambda: access.create_key(core, data.name, list(data.scopes), principal),
            lambda k: (201, s.NewApiKeyOut(k.key, wire(k.info, s.ApiKeyOut))),
        )

    @get(
        "/",
        summary="List API keys",
        description="Names, scopes, who created them and when, revoked or not; never the keys"
        " themselves (only their hashes are stored). Paginated with next_cursor.",
        operation_id="listApiKeys",
    )
    async def list_keys(
        self, core: CoreDep, principal: PrincipalDep, cursor: Cursor = None, limit: Limit = 50
    ) -> s.ApiKeyPage:
        require(principal, Scope.ADMIN)
        page = await access.list_keys(core, cursor=cursor, limit=limit)
        return wire(page, s.ApiKeyPage)

    @delete(
        "/{key_id:str}",
        summary="Revoke an API key",
        description="The key stops working; its record stays, with revoked_at set, for the audit."
        " The last active admin key cannot be revoked (409): create another first.",
        operation_id="revokeApiKey",
        status_code=200,
    )
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        key_id: FromPath[str],
    ) -> Response[s.ApiKeyOut]:
        require(principal, Scope.ADMIN)
        return await respond(
            request,
            principal,
            lambda: access.revoke_key(core, key_id, principal),
            lambda k: (200, wire(k, s.ApiKeyOut)),
        )
