"""Preferences of a customer: channels, topics, quiet hours, language, frequency cap."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, patch
from litestar.params import JSONBody

from consentry import customers
from consentry.access import require
from consentry.core.principals import READ_SCOPES, Scope
from consentry.http.deps import CoreDep, ExternalIdPath, PrincipalDep
from consentry.http.writes import respond
from consentry.ledger import preferences
from consentry.ledger import schemas as s


class PreferenceController(Controller):
    path = "/v1/customers/{external_id:str}/preferences"
    tags = ["preferences"]

    @get(
        "/",
        summary="Read preferences",
        description="Channels, topics, quiet hours, language and weekly frequency cap. Reading"
        " them is"
        " audited.",
        operation_id="getPreferences",
    )
    async def read(
        self, core: CoreDep, principal: PrincipalDep, external_id: ExternalIdPath
    ) -> s.PreferencesOut:
        require(principal, *READ_SCOPES)
        subject_id, _ = await customers.resolve(core, external_id)
        return s.preferences_out(await preferences.read(core, subject_id, principal))

    @patch(
        "/",
        summary="Change preferences",
        description="Only the fields sent change; maps (channels, topics) merge; null clears"
        " quiet_hours, language or frequency_cap_per_week. A channel switched off overrides"
        " every purpose and topic on that channel, except transactional messages.",
        operation_id="updatePreferences",
    )
    async def change(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        data: JSONBody[s.PreferencesPatch],
    ) -> Response[s.PreferencesOut]:
        require(principal, Scope.BACKEND_WRITE)
        subject_id, _ = await customers.resolve(core, external_id)
        return await respond(
            request,
            principal,
            lambda: preferences.change(
                core, subject_id, data.patch(), source=data.source, actor=principal
            ),
            lambda doc: (200, s.preferences_out(doc)),
        )
