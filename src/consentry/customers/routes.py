"""Customers: upsert by external id, read, search by identity, list, issue a customer token."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter

from consentry import access
from consentry.access import require
from consentry.core.principals import READ_SCOPES, Scope
from consentry.customers import records as customers
from consentry.customers import schemas as s
from consentry.domain.errors import Invalid
from consentry.http.deps import CoreDep, Cursor, ExternalIdPath, Limit, PrincipalDep
from consentry.http.schemas import TokenIn, TokenOut, wire
from consentry.http.writes import respond


class CustomerController(Controller):
    path = "/v1/customers"
    tags = ["customers"]

    @put(
        "/{external_id:str}",
        summary="Create or update a customer",
        description="Attributes and identities merge into what is stored; a null value removes"
        " one. Identities and sensitive attributes are encrypted at rest. 201 when created.",
        operation_id="upsertCustomer",
        responses={201: ResponseSpec(s.CustomerOut, description="Created")},
    )
    async def upsert(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        data: JSONBody[s.CustomerIn],
    ) -> Response[s.CustomerOut]:
        require(principal, Scope.BACKEND_WRITE)
        cmd = customers.CustomerUpsert(
            external_id, data.region, dict(data.identities), dict(data.attributes)
        )
        return await respond(
            request,
            principal,
            lambda: customers.upsert(core, cmd, principal),
            lambda r: (201 if r[1] else 200, wire(r[0], s.CustomerOut)),
        )

    @get(
        "/{external_id:str}",
        summary="Read a customer (audited)",
        description="Identities decrypted, attributes, region and version. Every read writes an"
        " audit"
        " entry; `reason` says why and is kept there.",
        operation_id="getCustomer",
    )
    async def read(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        reason: Annotated[
            str | None,
            Parameter(max_length=200, description="why you read it; kept in the audit log"),
        ] = None,
    ) -> s.CustomerOut:
        require(principal, *READ_SCOPES)
        return wire(await customers.get(core, external_id, principal, reason), s.CustomerOut)

    @get(
        "/",
        summary="List customers (ids and regions only)",
        description="No personal data: ids, external ids, regions and times; paginated with"
        " next_cursor.",
        operation_id="listCustomers",
    )
    async def list_customers(
        self, core: CoreDep, principal: PrincipalDep, cursor: Cursor = None, limit: Limit = 50
    ) -> s.CustomerPage:
        require(principal, *READ_SCOPES)
        return wire(await customers.list_ids(core, cursor=cursor, limit=limit), s.CustomerPage)

    @post(
        "/search",
        status_code=200,
        summary="Find a customer by email or phone (audited)",
        description="Matching uses a keyed blind index: the identity is never stored in clear.",
        operation_id="searchCustomer",
    )
    async def search(
        self, core: CoreDep, principal: PrincipalDep, data: JSONBody[s.CustomerSearch]
    ) -> s.CustomerOut:
        require(principal, *READ_SCOPES)
        given = [(k, v) for k, v in (("email", data.email), ("phone", data.phone)) if v]
        if len(given) != 1:
            raise Invalid("give exactly one of email or phone", field="email")
        kind, value = given[0]
        found = await customers.find_by_identity(core, kind, value, principal)
        return wire(found, s.CustomerOut)

    @post(
        "/{external_id:str}/token",
        summary="Issue a short-lived customer token",
        description="The token lets the customer read and change only their own consents and"
        " preferences, under /v1/me. It is shown once: a retry with the same Idempotency-Key"
        " answers 409.",
        operation_id="issueCustomerToken",
    )
    async def token(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        data: JSONBody[TokenIn | None] = None,
    ) -> Response[TokenOut]:
        require(principal, Scope.BACKEND_WRITE)
        subject_id, _ = await customers.resolve(core, external_id)
        ttl = data.ttl_seconds if data else None
        return await respond(
            request,
            principal,
            lambda: access.issue_customer_token(core, subject_id, principal, ttl),
            lambda t: (201, wire(t, TokenOut)),
        )
