"""Purposes and their notices, from the policy, in the customer's language."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, Parameter

from consentry.domain.errors import Invalid, NotFound
from consentry.http.deps import CoreDep
from consentry.ledger import schemas as s

Language = Annotated[str, Parameter(max_length=10, description="en or ja (see the policy)")]


def _language(core: CoreDep, language: str) -> str:
    if language not in core.policy.languages:
        raise Invalid(
            f"language must be one of {', '.join(core.policy.languages)}", field="language"
        )
    return language


class PurposeController(Controller):
    path = "/v1/purposes"
    tags = ["purposes"]

    @get(
        "/",
        summary="Purposes with their current notice",
        description="From the policy in force: legal basis, data categories, channels, double"
        " opt-in,"
        " expiry and the notice text in the language asked for. Public.",
        operation_id="listPurposes",
        security=[],
    )
    async def list_purposes(self, core: CoreDep, language: Language = "en") -> s.PurposeList:
        lang = _language(core, language)
        items = [s.purpose_out(core.policy, p, lang) for p in core.policy.purposes.values()]
        return s.PurposeList(core.policy.version, lang, items)

    @get(
        "/{name:str}",
        summary="One purpose with its current notice",
        description="As in the list, with the versions of its notice so far. Public.",
        operation_id="getPurpose",
        security=[],
    )
    async def one(
        self, core: CoreDep, name: FromPath[str], language: Language = "en"
    ) -> s.PurposeOut:
        purpose = core.policy.purposes.get(name)
        if purpose is None:
            raise NotFound(f"no purpose '{name}' in the policy")
        return s.purpose_out(core.policy, purpose, _language(core, language))
