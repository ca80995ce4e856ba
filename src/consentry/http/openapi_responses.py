"""Document the API's errors in OpenAPI: every /v1 operation lists the problem+json answers it
can give, and public operations say so with `security: []`.

Litestar documents validation errors as its own application/json shape (status 400); the app
answers problem+json instead (see problems.py), so those are replaced here. `document_errors(app)`
runs once in `create_app`, before the schema is first built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.enums import ParamType as ParameterLocation
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema
from litestar.routes import HTTPRoute

from consentry.http.deps import is_public
from consentry.http.problems import MEDIA_TYPE
from consentry.http.schemas import Problem

_DESCRIPTIONS = {
    400: "The request is malformed, e.g. the body is not valid JSON",
    401: "No credential, or an unknown, revoked or expired one",
    403: "The credential lacks the scope this needs",
    404: "No such resource",
    409: "Conflicts with what is stored",
    410: "No longer valid",
    413: "The request body is too large",
    422: "A field or parameter is not valid; `field` names it",
    429: "Too many requests; retry after the time in Retry-After",
    500: "Unexpected error; nothing was recorded",
    503: "A service this needs is not there (e.g. no email channel installed, no public URL"
    " configured), or the storage is full: nothing was recorded; retry after Retry-After",
}
# Answers specific to one operation, beyond what its shape implies.
_EXTRA: dict[tuple[str, str], set[int]] = {
    ("PUT", "/v1/customers/{external_id}"): {409},
    # an answer holding a secret is shown once: its idempotent replay is a 409 that says so
    ("POST", "/v1/api-keys"): {409},
    ("POST", "/v1/customers/{external_id}/token"): {409},
    ("DELETE", "/v1/api-keys/{key_id}"): {409},  # the last active admin key stays
    ("POST", "/v1/customers/search"): {404},
    ("POST", "/v1/events"): {404},  # an event names a customer that does not exist
    ("POST", "/v1/confirmations"): {404, 410},
    # the audit filter's query parameters are parsed by a dependency (one for all three)
    ("GET", "/v1/audit/entries"): {400, 404, 422},
    ("GET", "/v1/audit/export"): {400, 404, 422},
    ("GET", "/v1/audit/export.csv"): {400, 404, 422},
    ("GET", "/v1/audit/entries/{seq}/proof"): {409},
    ("GET", "/v1/audit/consistency"): {404, 409},
    ("POST", "/v1/audit/keys/rotate"): {409},
    # data-subject requests: a step the request's state does not allow is a 409; an erased
    # customer, or an expired export, a 410
    ("POST", "/v1/requests"): {404, 409, 410},
    ("POST", "/v1/requests/{request_id}/verify"): {409},
    ("POST", "/v1/requests/{request_id}/acknowledge"): {409},
    ("POST", "/v1/requests/{request_id}/extend"): {409},
    ("POST", "/v1/requests/{request_id}/reject"): {409},
    ("POST", "/v1/requests/{request_id}/fulfil"): {409, 410},
    ("POST", "/v1/requests/{request_id}/download-link"): {410},
    ("GET", "/v1/requests/{request_id}/export"): {410},
    ("GET", "/v1/exports/{token}"): {401, 410},
    ("POST", "/v1/me/requests"): {409, 410},
    ("GET", "/v1/me/requests/{request_id}/export"): {410},
    ("POST", "/v1/verifications"): {503},  # no email channel configured (429 is everywhere)
    ("POST", "/v1/verifications/confirm"): {401},
}
_NOT_PARAMETERS = {"self", "request", "socket", "state", "scope", "headers", "cookies", "query"}


IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in=ParameterLocation.HEADER,
    required=False,
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=200),
    description="Send the same key again to retry safely: the first answer is replayed"
    " (Idempotent-Replayed: true) and nothing is recorded twice. The same key with a different"
    " request is a 422.",
)


@dataclass
class IdempotentOperation(Operation):
    """A write that takes an Idempotency-Key header."""

    def __post_init__(self) -> None:
        self.parameters = [*(self.parameters or []), IDEMPOTENCY_KEY]


def is_idempotent_write(handler: HTTPRouteHandler) -> bool:
    """Writes answered through `api.writes.respond` take the request to read its key."""
    writes = {"POST", "PUT", "PATCH", "DELETE"}
    return (
        bool(handler.http_methods & writes) and "request" in handler.parsed_fn_signature.parameters
    )


@dataclass
class PublicOperation(Operation):
    """An operation that needs no credential: `security: []` overrides the global requirement."""

    def __post_init__(self) -> None:
        self.security = []


def error_statuses(method: str, path: str, handler: HTTPRouteHandler) -> set[int]:
    """The problem+json statuses an operation can answer."""
    statuses = {429, 500, 503}  # 503: a full disk can refuse any write or audited read
    inputs = set(handler.parsed_fn_signature.parameters) - _NOT_PARAMETERS
    inputs -= set(handler.resolve_dependencies())
    if inputs:
        statuses |= {400, 422}
    if "data" in inputs:
        statuses.add(413)
    if not is_public(handler):
        statuses |= {401, 403}
    if "{" in path or path.startswith("/v1/me/"):
        statuses.add(404)
    return statuses | _EXTRA.get((method, path), set())


def _spec(status: int) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem,
        description=_DESCRIPTIONS[status],
        media_type=MEDIA_TYPE,
        generate_examples=False,
    )


def document_errors(app: Litestar) -> None:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            if is_public(handler):
                handler.operation_class = PublicOperation
            elif is_idempotent_write(handler):
                handler.operation_class = IdempotentOperation
            if not route.path_format.startswith("/v1/"):
                continue
            statuses: set[int] = set()
            for method in handler.http_methods:
                statuses |= error_statuses(method, route.path_format, handler)
            documented: dict[int, Any] = {s: _spec(s) for s in sorted(statuses)}
            handler.responses = {**documented, **(handler.responses or {})}
