"""Structured JSON logs with a request id, and a processor that keeps personal data out of them."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"
_SECRET_KEYS = {
    "email",
    "phone",
    "identities",
    "attributes",
    "token",
    "key",
    "authorization",
    "password",
    "secret",
    "ip",
    "name",
    "first_name",
    "last_name",
    "external_id",
}
_EMAIL = re.compile(r"[^\s@\"'<>]+@[^\s@\"'<>]+\.[A-Za-z]{2,}")
_BEARER = re.compile(r"(ck_[0-9a-f]+_)[A-Za-z0-9_\-]+")


_PARAMETER_LOGGERS = ("aiosqlite", "asyncpg", "httpx", "httpcore", "piccolo")


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Drop values under personal or secret keys; mask emails and API key secrets in text."""
    for key in list(event):
        event[key] = _clean(key, event[key])
    return event


def _clean(key: Any, value: Any) -> Any:
    """The same rules at any depth: dicts, lists and tuples inside an event are cleaned too."""
    if isinstance(key, str) and key.lower() in _SECRET_KEYS:
        return REDACTED
    if isinstance(value, str):
        return _BEARER.sub(r"\1" + REDACTED, _EMAIL.sub(REDACTED, value))
    if isinstance(value, dict):
        return {k: _clean(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(None, v) for v in value]
    return value


def configure(level: str = "info", *, json: bool = True, stream: Any = None) -> None:
    """structlog for our events; the standard library's (uvicorn's) rendered the same way."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    out = stream or sys.stderr
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared)
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    for name in _PARAMETER_LOGGERS:  # their debug lines carry SQL parameters: personal data
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
