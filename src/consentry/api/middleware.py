"""Request ids and one access-log line per request (route template, never the raw path)."""

from __future__ import annotations

import os
import time
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("consentry.access")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return
        request_id = os.urandom(16).hex()  # 128 random bits, cheaper than uuid4
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await app(scope, receive, send_with_id)
        except Exception as exc:  # raised by a middleware (e.g. 429): the app-level handler answers
            status = getattr(exc, "status_code", 500)
            raise
        finally:
            route: Any = scope.get("path_template", "(unrouted)")
            log.info(
                "request",
                method=scope["method"],  # type: ignore[typeddict-item]
                route=route,
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 2),
                actor=scope.get("state", {}).get("actor"),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    return middleware
