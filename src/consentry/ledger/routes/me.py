"""The customer's own view, with a customer token: their consents and preferences, nothing else."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromQuery, JSONBody

from consentry.customers import me
from consentry.http.deps import CoreDep, Cursor, Limit, PrincipalDep
from consentry.http.schemas import wire
from consentry.http.writes import respond
from consentry.ledger import consent_reads, consents, preferences
from consentry.ledger import schemas as s
from consentry.ledger.routes.params import GpcHeader


class MeController(Controller):
    path = "/v1/me"
    tags = ["customer self-service"]

    @get(
        "/consents",
        summary="My current consents",
        description="With a customer token: the decision in force per purpose and channel.",
        operation_id="getMyConsents",
    )
    async def state(self, core: CoreDep, principal: PrincipalDep) -> s.ConsentStateList:
        subject_id, _ = await me(core, principal)
        states = await consent_reads.current_state(core, subject_id)
        return s.ConsentStateList(wire(states, list[s.ConsentStateOut]))

    @post(
        "/consents",
        summary="Record my decisions",
        description="Recorded with source and actor the customer; Sec-GPC: 1 opts out of"
        " sale/share where"
        " the region honours it. Takes an Idempotency-Key.",
        operation_id="recordMyConsents",
    )
    async def record(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        data: JSONBody[s.ConsentRequest],
        sec_gpc: GpcHeader = None,
    ) -> Response[s.Recorded]:
        subject_id, region = await me(core, principal)
        cmd = data.command(sec_gpc)
        return await respond(
            request,
            principal,
            lambda: consents.record_for(core, subject_id, region, cmd, principal),
            lambda r: (201, wire(r, s.Recorded)),
        )

    @get(
        "/consents/history",
        summary="My consent history",
        description="Every decision I recorded or was recorded for me, oldest first.",
        operation_id="getMyConsentHistory",
    )
    async def history(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        purpose: FromQuery[str | None] = None,
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> s.HistoryPage:
        subject_id, _ = await me(core, principal)
        page = await consent_reads.history(
            core, subject_id, purpose=purpose, cursor=cursor, limit=limit
        )
        return wire(page, s.HistoryPage)

    @get(
        "/preferences",
        summary="My preferences",
        description="Channels, topics, quiet hours, language and weekly frequency cap.",
        operation_id="getMyPreferences",
    )
    async def read_preferences(self, core: CoreDep, principal: PrincipalDep) -> s.PreferencesOut:
        subject_id, _ = await me(core, principal)
        return s.preferences_out(await preferences.read(core, subject_id))

    @patch(
        "/preferences",
        summary="Change my preferences",
        description="Only the fields sent change; maps merge; null clears a setting.",
        operation_id="updateMyPreferences",
    )
    async def change_preferences(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        data: JSONBody[s.PreferencesPatch],
    ) -> Response[s.PreferencesOut]:
        subject_id, _ = await me(core, principal)
        return await respond(
            request,
            principal,
            lambda: preferences.change(
                core, subject_id, data.patch(), source=data.source, actor=principal
            ),
            lambda doc: (200, s.preferences_out(doc)),
        )
