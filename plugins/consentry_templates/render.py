"""Checking a template at save time and rendering it for one customer through the gate.

`Runtime.of(context)` holds, in the plugin's context cache (one per running core), the sandbox
(builtin filters plus those plugins contributed), the vocabulary of `templates.render` and a
small cache of parsed templates. Rendering for a customer asks the gate for a view (audited by
the gate; refused with its reasons when consent does not cover it) and renders with exactly that
view: a field the view does not hold renders empty, or as the template's `default:` fallback.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import liquid
import structlog
from liquid.exceptions import LiquidError

from consentry.plugins import (
    Conflict,
    Gate,
    GateRefused,
    Invalid,
    PluginContext,
    Policy,
    SubjectView,
)
from consentry_templates.sandbox import KINDS, Budget, Sandbox, message_of
from consentry_templates.store import Stored
from consentry_templates.variables import (
    Vocabulary,
    company_of,
    referenced_fields,
    render_data,
    strict_findings,
    unavailable,
)

CAPABILITY = "templates.render"
CACHE_KEY = "templates.runtime"
CACHED_TEMPLATES = 256
log = structlog.get_logger("consentry.templates")


@dataclass(frozen=True, slots=True)
class Compiled:
    """A parsed template: body, optional subject line, and the customer fields they read."""

    kind: str
    body: liquid.BoundTemplate
    subject: liquid.BoundTemplate | None
    fields: frozenset[str]


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body: str


class RenderFailed(Exception):
    """The template stopped: a limit was reached or a filter failed (one-line reason)."""


def _parse(sandbox: Sandbox, source: str, kind: str, field: str) -> liquid.BoundTemplate:
    try:
        template = sandbox.parse(source, kind)
    except LiquidError as exc:
        raise Invalid(f"{field}: {message_of(exc)}", field=field) from None
    known = sandbox.filter_names()
    unknown = sorted(
        (source.count("\n", 0, span.index) + 1, name)
        for name, spans in template.analyze().filters.items()
        if name not in known
        for span in spans
    )
    if unknown:
        listed = ", ".join(f"'{name}' (line {line})" for line, name in unknown)
        raise Invalid(f"{field}: unknown filter {listed}", field=field)
    return template


def compile_template(
    sandbox: Sandbox, vocabulary: Vocabulary, *, kind: str, body: str, subject: str, strict: bool
) -> Compiled:
    """Parse and check; `Invalid` naming the field (`body` or `subject`) and, for a strict
    template, every variable its capability could never see, with its line."""
    if kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}", field="kind")
    parsed_body = _parse(sandbox, body, kind, "body")
    parsed_subject = _parse(sandbox, subject, "text", "subject") if subject else None
    if strict:
        for field, parsed, source in (
            ("subject", parsed_subject, subject),
            ("body", parsed_body, body),
        ):
            findings = strict_findings(parsed, source, vocabulary) if parsed else []
            if findings:
                raise Invalid(
                    f"{field}: strict template reads variables {vocabulary.capability} can"
                    f" never see: {'; '.join(str(f) for f in findings)}."
                    f" Readable: {', '.join(vocabulary.names())}",
                    field=field,
                )
    fields = referenced_fields(parsed_body)
    if parsed_subject is not None:
        fields |= referenced_fields(parsed_subject)
    return Compiled(kind, parsed_body, parsed_subject, fields)


def render(compiled: Compiled, data: Mapping[str, Any]) -> Rendered:
    """Render with `data`; `RenderFailed` when the sandbox stops it."""
    try:
        with Budget():
            body = compiled.body.render(data)
            subject = compiled.subject.render(data) if compiled.subject is not None else ""
    except Exception as exc:  # a limit, a filter's error: never a crash of the request
        raise RenderFailed(message_of(exc)) from None
    # a subject is one header line: customer data must not add lines to it
    return Rendered(" ".join(subject.splitlines()), body)


@dataclass(frozen=True, slots=True)
class Preview:
    rendered: Rendered
    view: SubjectView
    missing: list[str]
    withheld: list[str]


class Runtime:
    """The plugin's state for one core (in its context's `cache`)."""

    def __init__(self, context: PluginContext) -> None:
        self.policy: Policy = context.policy
        self.sandbox = Sandbox.build(dict(context.template_filters))
        self.vocabulary = Vocabulary.of(self.policy, CAPABILITY)
        self.company = company_of(self.policy)
        self.gate: Gate = context.gate
        self._compiled: OrderedDict[tuple[UUID, int], Compiled] = OrderedDict()

    @classmethod
    def of(cls, context: PluginContext) -> Runtime:
        found = context.cache.get(CACHE_KEY)
        if not isinstance(found, Runtime):
            found = context.cache[CACHE_KEY] = cls(context)
        return found

    def check(self, *, kind: str, body: str, subject: str, strict: bool) -> Compiled:
        return compile_template(
            self.sandbox, self.vocabulary, kind=kind, body=body, subject=subject, strict=strict
        )

    def compiled(self, stored: Stored) -> Compiled:
        key = (stored.id, stored.version)
        found = self._compiled.get(key)
        if found is None:
            # stored templates passed the check when saved; strictness is not re-judged here
            found = self.check(
                kind=stored.kind, body=stored.body, subject=stored.subject, strict=False
            )
            self._compiled[key] = found
            while len(self._compiled) > CACHED_TEMPLATES:
                self._compiled.popitem(last=False)
        return found

    async def view(self, subject_id: UUID) -> SubjectView:
        """The gate's view for `templates.render`; `Conflict` with the gate's reasons."""
        try:
            return await self.gate.view(CAPABILITY, subject_id)
        except GateRefused as refused:
            raise Conflict(
                f"{CAPABILITY} is not allowed for this customer: {'; '.join(refused.reasons)}",
                field="external_id",
            ) from None

    async def preview(self, stored: Stored, subject_id: UUID) -> Preview:
        compiled = self.compiled(stored)
        view = await self.view(subject_id)
        try:
            rendered = render(compiled, render_data(view, self.company))
        except RenderFailed as failed:
            raise Invalid(f"the template could not be rendered: {failed}", field="body") from None
        missing, withheld = unavailable(compiled.fields, view, self.policy)
        return Preview(rendered, view, missing, withheld)
