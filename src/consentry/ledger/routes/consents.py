"""Consents of a customer: record decisions, read state and history, ask for a decision."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery, JSONBody, Parameter

from consentry import customers
from consentry.access import require
from consentry.core.principals import READ_SCOPES, Scope
from consentry.http.deps import CoreDep, Cursor, ExternalIdPath, Limit, PrincipalDep
from consentry.http.schemas import wire
from consentry.http.writes import respond
from consentry.ledger import consent_reads, consents, double_opt_in
from consentry.ledger import schemas as s
from consentry.ledger.routes.params import GpcHeader


class ConsentController(Controller):
    path = "/v1/customers/{external_id:str}"
    tags = ["consents"]

    @post(
        "/consents",
        summary="Record consent decisions",
        description="Several purposes in one request, optionally per channel. A purpose that"
        " needs double opt-in records 'pending' and returns a confirmation token. Sec-GPC: 1"
        " records an opt-out of sale/share where the region honours GPC.",
        operation_id="recordConsents",
    )
    async def record(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        data: JSONBody[s.ConsentRequest],
        sec_gpc: GpcHeader = None,
    ) -> Response[s.Recorded]:
        require(principal, Scope.BACKEND_WRITE)
        cmd = data.command(sec_gpc)
        return await respond(
            request,
            principal,
            lambda: consents.record(core, external_id, cmd, principal),
            lambda r: (201, wire(r, s.Recorded)),
        )

    @get(
        "/consents",
        summary="Current consent state",
        description="Per purpose and channel: the decision in force, its legal basis, notice"
        " version and"
        " source, and the ledger record it comes from. Reading it is audited.",
        operation_id="getConsents",
    )
    async def state(
        self, core: CoreDep, principal: PrincipalDep, external_id: ExternalIdPath
    ) -> s.ConsentStateList:
        require(principal, *READ_SCOPES)
        subject_id, _ = await customers.resolve(core, external_id)
        states = await consent_reads.current_state(core, subject_id, principal)
        return s.ConsentStateList(wire(states, list[s.ConsentStateOut]))

    @get(
        "/consents/history",
        summary="The consent ledger, oldest first",
        description="Every recorded decision, immutable, with its evidence; filter by purpose;"
        " paginated"
        " with next_cursor. Reading it is audited.",
        operation_id="getConsentHistory",
    )
    async def history(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        purpose: FromQuery[str | None] = None,
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> s.HistoryPage:
        require(principal, *READ_SCOPES)
        subject_id, _ = await customers.resolve(core, external_id)
        page = await consent_reads.history(
            core, subject_id, purpose=purpose, cursor=cursor, limit=limit, actor=principal
        )
        return wire(page, s.HistoryPage)

    @get(
        "/check",
        summary="May I use this customer's data for a purpose?",
        description="Answers allow or deny with the chain of reasons. Unknown purpose, channel or"
        " topic: deny.",
        operation_id="checkConsent",
    )
    async def check(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        purpose: Annotated[str, Parameter(min_length=1, max_length=100)],
        channel: Annotated[str | None, Parameter(max_length=50)] = None,
        topic: Annotated[str | None, Parameter(max_length=100)] = None,
    ) -> s.CheckOut:
        require(principal, *READ_SCOPES)
        customers.check_external_id(external_id)
        return s.check_out(await consent_reads.check(core, external_id, purpose, channel, topic))


class ConfirmationController(Controller):
    path = "/v1/confirmations"
    tags = ["consents"]

    @post(
        "/",
        summary="Confirm a double opt-in",
        security=[],
        description="The token from the confirmation message is the only credential: single"
        " use, expiring.",
        operation_id="confirmDoubleOptIn",
        status_code=201,
    )
    async def confirm(self, core: CoreDep, data: JSONBody[s.ConfirmIn]) -> s.LedgerRecordOut:
        return wire(await double_opt_in.confirm(core, data.token), s.LedgerRecordOut)
