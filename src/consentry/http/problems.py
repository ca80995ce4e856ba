"""Every error is application/problem+json (RFC 9457) with a detail a person can act on."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import asyncpg
import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from consentry.domain.errors import PluginFailed, ServiceError, TooManyRequests
from consentry.http.bodies import JSON_BODY
from consentry.http.schemas import FieldError, Problem
from consentry.http.validation import allowed_values, field_errors, not_one_of
from consentry.plugins.types import GateRefused
from consentry.plugins.web import MEDIA_TYPE as MEDIA_TYPE
from consentry.storage.database import (
    StorageFull,
    UnstorableText,
    UnstorableTime,
    is_storage_full,
)
from consentry.storage.idempotency import KeyReused, Replayed

log = structlog.get_logger("consentry.api")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
_FIELD = re.compile(r"at `\$\.?([^`]*)`")


def problem(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[FieldError] | None = None,
) -> Response[bytes]:
    body = problem_body(request, status, detail, field=field, errors=errors)
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def problem_body(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    field: str | None = None,
    errors: list[FieldError] | None = None,
) -> bytes:
    body = Problem(
        type=f"https://consentry.dev/problems/{status}",
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.url.path,
        field=field,
        request_id=request.scope.get("state", {}).get("request_id"),
        errors=errors,
    )
    return msgspec.json.encode(body)


def on_service_error(request: Request[Any, Any, Any], exc: ServiceError) -> Response[bytes]:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(request, exc.status, exc.detail, field=exc.field, headers=headers)


def on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    """Litestar's body and parameter validation: every bad field, why, and the allowed values
    where there is a set of them (`errors`); `field` and `detail` lead with the first."""
    items = [i for i in exc.extra if isinstance(i, dict)] if isinstance(exc.extra, list) else []
    raw = "; ".join(str(i.get("message", "")) for i in items) or exc.detail or ""
    if "malformed" in raw.lower():
        return problem(request, 400, "the body is not valid JSON: " + raw)
    errors: list[FieldError] = []
    for item in items:
        message = str(item.get("message", ""))
        key = item.get("key")
        match = _FIELD.search(message)
        field = match.group(1) if match else (str(key) if key else "")
        if item.get("source") == "body" and (found := _body_errors(request)):
            errors.extend(found)
            continue
        errors.append(FieldError(field, _param_detail(request, field, message)))
    if not errors:
        return problem(request, 422, exc.detail or "the request is not valid")
    detail = "; ".join(f"{e.field}: {e.detail}" if e.field else e.detail for e in errors)
    return problem(request, 422, detail, field=errors[0].field or None, errors=errors)


def _body_errors(request: Request[Any, Any, Any]) -> list[FieldError]:
    """All errors of the decoded body against the handler's body type (msgspec stops at one)."""
    body = request.scope.get("state", {}).get(JSON_BODY)
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if body is None or data is None:
        return []
    return [FieldError(f, d) for f, d in field_errors(body, data.annotation)]


def _param_detail(request: Request[Any, Any, Any], name: str, message: str) -> str:
    """A parameter's error, naming the allowed values when it takes a set of them."""
    handler = request.route_handler
    signatures = [handler.parsed_fn_signature] + [
        p.parsed_fn_signature
        for p in handler.resolve_dependencies().values()
        if getattr(p, "parsed_fn_signature", None) is not None
    ]
    for signature in signatures:
        parameter = signature.parameters.get(name)
        allowed = allowed_values(parameter.annotation) if parameter else None
        if allowed:
            return not_one_of(request.query_params.get(name, ""), allowed)
    return message


def on_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    headers = dict(exc.headers or {})
    if exc.status_code == 429 and "retry-after" not in {k.lower() for k in headers}:
        reset = next((v for k, v in headers.items() if k.lower() == "ratelimit-reset"), "")
        headers["Retry-After"] = reset if reset.isdigit() and int(reset) > 0 else "60"
    # Litestar's default detail is the status phrase ("Too Many Requests"): use ours instead.
    if exc.status_code == 400 and _looks_like_decoding(exc.detail):
        return problem(request, 400, f"the body is not valid JSON: {exc.detail}")
    generic = exc.detail.lower() == _TITLES.get(exc.status_code, "").lower() if exc.detail else True
    detail = "" if generic else exc.detail
    return problem(
        request,
        exc.status_code,
        detail or _default_detail(exc.status_code),
        headers=headers or None,
    )


def _looks_like_decoding(detail: str | None) -> bool:
    text = (detail or "").lower()
    return any(word in text for word in ("truncated", "malformed", "json", "decode"))


def _default_detail(status: int) -> str:
    return {
        404: "no such resource; see /schema for the API",
        405: "this method is not allowed here; see /schema for the API",
        413: "the request body is too large",
        429: "too many requests; slow down and retry after the time in Retry-After",
    }.get(status, _TITLES.get(status, "error"))


def on_replay(request: Request[Any, Any, Any], exc: Replayed) -> Response[bytes]:
    media = MEDIA_TYPE if exc.status >= 400 else "application/json"
    return Response(
        exc.body, status_code=exc.status, media_type=media, headers={"Idempotent-Replayed": "true"}
    )


def on_key_reused(request: Request[Any, Any, Any], exc: KeyReused) -> Response[bytes]:
    return problem(
        request, 422, str(exc) + "; use a new key for a new request", field="Idempotency-Key"
    )


def on_unstorable_text(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """NUL characters in text: the caller's input, refused alike on both engines."""
    return problem(request, 422, "text must not contain NUL (\\u0000) characters")


def on_unstorable_time(request: Request[Any, Any, Any], exc: UnstorableTime) -> Response[bytes]:
    return problem(request, 422, str(exc))


def on_gate_refused(request: Request[Any, Any, Any], exc: GateRefused) -> Response[bytes]:
    """A plugin route asked the gate and was refused: the reasons are the customer's consent."""
    return problem(request, 403, str(exc))


def on_plugin_failed(request: Request[Any, Any, Any], exc: PluginFailed) -> Response[bytes]:
    """A plugin whose answer the request needed failed: say which, and why."""
    return problem(request, HTTP_500_INTERNAL_SERVER_ERROR, f"{exc}; nothing was recorded")


def on_storage_full(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """No room left in a store: nothing was recorded; the same request works once space returns.

    Raw engine and file-system errors come here too (the key store writes outside the writer):
    only those that mean "full" answer 503, anything else is unexpected.
    """
    if not is_storage_full(exc):
        return on_unexpected(request, exc)
    log.error("request.storage_full", error=type(exc).__name__)
    return problem(
        request,
        503,
        "the storage is full, so nothing was recorded; retry after the time in Retry-After"
        " (the operator has to free disk space)",
        headers={"Retry-After": str(StorageFull.retry_after)},
    )


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("request.failed", error=type(exc).__name__, path=request.scope.get("path_template"))
    return problem(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "an unexpected error occurred; nothing was recorded. Retry with the same"
        " Idempotency-Key, and report the request_id if it persists",
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    ServiceError: on_service_error,
    ValidationException: on_validation,
    HTTPException: on_http_error,
    Replayed: on_replay,
    KeyReused: on_key_reused,
    UnstorableText: on_unstorable_text,
    UnstorableTime: on_unstorable_time,
    GateRefused: on_gate_refused,
    PluginFailed: on_plugin_failed,
    StorageFull: on_storage_full,
    sqlite3.OperationalError: on_storage_full,
    asyncpg.PostgresError: on_storage_full,
    OSError: on_storage_full,
    Exception: on_unexpected,
}
