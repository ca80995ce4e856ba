"""Request ids and one access-log line per request (route template, never the raw path).

The request id is the caller's `X-Request-ID` when it is 1-128 printable ASCII characters, else
the trace id of a valid W3C `traceparent`, else 128 fresh random bits; it is echoed as
`X-Request-ID` on every answer and carried by the log line and problem bodies. A client that
goes away before its answer is complete is logged as status 499 with `disconnected=true`, not as
the 500 the framework makes of the broken request.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("consentry.access")
MAX_REQUEST_ID = 128
_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_REQUEST_ID)
# version (not ff) - trace id - parent id - flags; a later version may append "-..." fields
_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?")
_ZERO_TRACE = b"0" * 32
_ZERO_PARENT = b"0" * 16
CLIENT_CLOSED = 499  # nginx's code for "the client closed the connection first"


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's id for this request when well-formed, else a fresh one."""
    given = traceparent = None
    for name, value in headers:
        if name == b"x-request-id":
            given = value
        elif name == b"traceparent":
            traceparent = value
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given.decode()
    if traceparent is not None:
        trace = _trace_id(traceparent.strip())
        if trace:
            return trace
    return os.urandom(16).hex()  # 128 random bits, cheaper than uuid4


def _trace_id(value: bytes) -> str | None:
    match = _TRACEPARENT.fullmatch(value)
    if not match:
        return None
    version, trace, parent, rest = match.groups()
    if version == b"ff" or (version == b"00" and rest):
        return None
    return None if trace == _ZERO_TRACE or parent == _ZERO_PARENT else trace.decode()


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return
        rid = request_id(scope["headers"])
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 500
        responding = gone = False

        async def receive_watched() -> Any:
            nonlocal gone
            message = await receive()
            if message["type"] == "http.disconnect" and not responding:
                gone = True  # whatever the app answers now, nobody reads it
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, responding
            if message["type"] == "http.response.start":
                responding = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            await app(scope, receive_watched, send_with_id)
        except Exception as exc:  # raised by a middleware: the app-level handler answers
            status = getattr(exc, "status_code", 500)
            raise
        finally:
            route: Any = scope.get("path_template", "(unrouted)")
            log.info(
                "request",
                method=scope["method"],  # type: ignore[typeddict-item]
                route=route,
                status=CLIENT_CLOSED if gone else status,
                ms=round((time.perf_counter() - started) * 1000, 2),
                actor=scope.get("state", {}).get("actor"),
                request_id=rid,
                **({"disconnected": True} if gone else {}),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    return middleware
