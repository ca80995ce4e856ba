"""Consents of a customer: record decisions, read state and history, ask for a decision."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery, HeaderParameter, JSONBody, Parameter

from consentry.core.principals import READ_SCOPES, Scope
from consentry.customers import records as customers
from consentry.domain.consent import Decision, Source
from consentry.http import convert
from consentry.http import schemas as s
from consentry.http.auth import require
from consentry.http.deps import CoreDep, Cursor, ExternalIdPath, Limit, PrincipalDep
from consentry.http.writes import respond
from consentry.ledger import consents

GpcHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Sec-GPC",
        required=False,
        description="Global Privacy Control: '1' opts out of sale/share where the"
        " customer's region honours it",
    ),
]


def to_request(data: JSONBody[s.ConsentRequest], gpc: str | None) -> consents.RecordRequest:
    evidence = data.evidence or s.Evidence()
    return consents.RecordRequest(
        decisions=[
            consents.DecisionIn(
                d.purpose, Decision(d.decision), d.channel, d.notice_version, d.language
            )
            for d in data.decisions
        ],
        source=Source(data.source) if data.source else None,
        evidence=consents.Evidence(evidence.ip, evidence.user_agent, evidence.url),
        gpc=(gpc or "").strip() == "1",
    )


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
        cmd = to_request(data, sec_gpc)
        return await respond(
            request,
            principal,
            lambda: consents.record(core, external_id, cmd, principal),
            lambda r: (201, convert.recorded(r)),
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
        return s.ConsentStateList(
            [convert.state(x) for x in await consents.current_state(core, subject_id, principal)]
        )

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
        page = await consents.history(
            core, subject_id, purpose=purpose, cursor=cursor, limit=limit, actor=principal
        )
        return s.HistoryPage([convert.record(r) for r in page.items], page.next_cursor)

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
        return convert.verdict(await consents.check(core, external_id, purpose, channel, topic))


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
        return convert.record(await consents.confirm(core, data.token))
