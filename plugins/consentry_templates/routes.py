"""HTTP: templates CRUD and per-customer preview, under /v1/plugins/templates/.

Writes need `backend:write` (or `admin`) and take an Idempotency-Key; reads and previews need
`backend:read`. A preview renders through the gate: a customer whose consent does not cover
`templates.render` gets a 409 problem with the gate's reasons, never a render.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody
from msgspec import Meta, Struct

from consentry.plugins import (
    ContextDep,
    Cursor,
    Limit,
    PrincipalDep,
    Scope,
    clean_name,
    problem_response,
    require,
)
from consentry_templates import store
from consentry_templates.render import CAPABILITY, Runtime
from consentry_templates.sandbox import MAX_SOURCE

Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
Source = Annotated[str, Meta(max_length=MAX_SOURCE)]
Subject = Annotated[str, Meta(max_length=2000)]
ExternalId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$", max_length=200)]


class TemplateIn(Struct, forbid_unknown_fields=True):
    name: Name
    body: Source
    kind: Literal["html", "text"] = "html"
    subject: Subject = ""
    strict: bool = True

    def __post_init__(self) -> None:
        self.name = clean_name(self.name, field="name")


class TemplateOut(Struct):
    id: UUID
    name: str
    kind: str
    capability: str
    purposes: list[str]
    subject: str
    body: str
    strict: bool
    version: int
    created_at: datetime
    updated_at: datetime


class TemplatePage(Struct):
    items: list[TemplateOut]
    next_cursor: str | None


class TemplatePreviewIn(Struct, forbid_unknown_fields=True):
    external_id: ExternalId


class TemplatePreviewOut(Struct):
    template_id: UUID
    external_id: str
    kind: str
    subject: str
    body: str
    capability: str
    purposes: list[str]
    missing: list[str]  # fields it reads that the view allows but this customer lacks
    withheld: list[str]  # fields it reads whose category the capability may not use


def _out(runtime: Runtime, t: store.Stored) -> TemplateOut:
    return TemplateOut(
        t.id,
        t.name,
        t.kind,
        t.capability,
        list(runtime.vocabulary.purposes),
        t.subject,
        t.body,
        t.strict,
        t.version,
        t.created_at,
        t.updated_at,
    )


def _draft(runtime: Runtime, data: TemplateIn) -> store.Draft:
    runtime.check(kind=data.kind, body=data.body, subject=data.subject, strict=data.strict)
    return store.Draft(data.name, data.kind, CAPABILITY, data.subject, data.body, data.strict)


_INVALID = problem_response(
    "The template does not parse, uses an unknown filter, or (strict) reads a variable its"
    " capability can never see; `field` names body or subject, the detail lists each with its line"
)


class TemplateController(Controller):
    path = "/"

    @post(
        "/",
        summary="Create a template",
        description="Liquid, sandboxed. `kind` html autoescapes every value; text does not."
        " A strict template (the default) may read only the fields `templates.render` could"
        " ever see and the company's data; others are reported with their line numbers.",
        operation_id="templatesCreateTemplate",
        responses={409: problem_response("A template with this name exists"), 422: _INVALID},
    )
    async def create_template(
        self,
        request: Request[Any, Any, Any],
        context: ContextDep,
        principal: PrincipalDep,
        data: JSONBody[TemplateIn],
    ) -> Response[TemplateOut]:
        require(principal, Scope.BACKEND_WRITE)
        runtime = Runtime.of(context)
        draft = _draft(runtime, data)
        return await context.respond(
            request,
            principal,
            lambda: store.create(context, draft, principal.actor),
            lambda t: (201, _out(runtime, t)),
        )

    @get(
        "/",
        summary="List templates, by name",
        description="Each with its source, kind, version and the purposes its capability needs;"
        " paginated.",
        operation_id="templatesListTemplates",
    )
    async def list_templates(
        self, context: ContextDep, principal: PrincipalDep, cursor: Cursor = None, limit: Limit = 50
    ) -> TemplatePage:
        require(principal, Scope.BACKEND_READ)
        runtime = Runtime.of(context)
        page = await store.list_page(context, cursor=cursor, limit=limit)
        return TemplatePage([_out(runtime, t) for t in page.items], page.next_cursor)

    @get(
        "/{template_id:str}",
        summary="Read a template",
        description="Its source, kind, version and the purposes its capability needs.",
        operation_id="templatesGetTemplate",
    )
    async def get_template(
        self, context: ContextDep, principal: PrincipalDep, template_id: FromPath[str]
    ) -> TemplateOut:
        require(principal, Scope.BACKEND_READ)
        return _out(Runtime.of(context), await store.get(context, store.parse_id(template_id)))

    @put(
        "/{template_id:str}",
        summary="Replace a template",
        description="Checked as on create; the version goes up by one.",
        operation_id="templatesUpdateTemplate",
        responses={409: problem_response("Another template has this name"), 422: _INVALID},
    )
    async def update_template(
        self,
        request: Request[Any, Any, Any],
        context: ContextDep,
        principal: PrincipalDep,
        template_id: FromPath[str],
        data: JSONBody[TemplateIn],
    ) -> Response[TemplateOut]:
        require(principal, Scope.BACKEND_WRITE)
        runtime = Runtime.of(context)
        tid = store.parse_id(template_id)
        draft = _draft(runtime, data)
        return await context.respond(
            request,
            principal,
            lambda: store.update(context, tid, draft, principal.actor),
            lambda t: (200, _out(runtime, t)),
        )

    @delete(
        "/{template_id:str}",
        summary="Delete a template",
        description="Answers the deleted template. Takes an Idempotency-Key.",
        operation_id="templatesDeleteTemplate",
        status_code=200,
    )
    async def delete_template(
        self,
        request: Request[Any, Any, Any],
        context: ContextDep,
        principal: PrincipalDep,
        template_id: FromPath[str],
    ) -> Response[TemplateOut]:
        require(principal, Scope.BACKEND_WRITE)
        runtime = Runtime.of(context)
        tid = store.parse_id(template_id)
        return await context.respond(
            request,
            principal,
            lambda: store.delete(context, tid, principal.actor),
            lambda t: (200, _out(runtime, t)),
        )

    @post(
        "/{template_id:str}/preview",
        status_code=200,
        summary="Render a template for one customer (through the gate, audited)",
        description="The gate builds the customer's view for `templates.render`; the template"
        " sees only that. `missing` lists fields the template reads that this customer does not"
        " have, `withheld` those the capability may never see (both render empty or as their"
        " fallback). 409 when the customer's consent does not allow it, with the reasons.",
        operation_id="templatesPreviewTemplate",
        responses={
            409: problem_response("The customer's consent does not allow templates.render"),
            422: problem_response(
                "A field is not valid, or the template stopped at a sandbox limit"
            ),
        },
    )
    async def preview_template(
        self,
        context: ContextDep,
        principal: PrincipalDep,
        template_id: FromPath[str],
        data: JSONBody[TemplatePreviewIn],
    ) -> TemplatePreviewOut:
        require(principal, Scope.BACKEND_READ)
        runtime = Runtime.of(context)
        stored = await store.get(context, store.parse_id(template_id))
        subject_id = await runtime.gate.subject_id(data.external_id)
        preview = await runtime.preview(stored, subject_id)
        return TemplatePreviewOut(
            stored.id,
            data.external_id,
            stored.kind,
            preview.rendered.subject,
            preview.rendered.body,
            preview.view.capability,
            list(preview.view.purposes),
            preview.missing,
            preview.withheld,
        )
