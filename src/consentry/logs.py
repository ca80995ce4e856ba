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


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Drop values under personal or secret keys; mask emails and API key secrets in text."""
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = REDACTED
        elif isinstance(event[key], str):
            event[key] = _BEARER.sub(r"\1" + REDACTED, _EMAIL.sub(REDACTED, event[key]))
    return event


def configure(level: str = "info", *, json: bool = True, stream: Any = None) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
