"""Idempotent writes: a retry with the same key replays the first answer instead of recording twice.

The caller sets a scope around its call (`with idempotency_scope(...)`); the writer picks it up at
submit, looks for a stored answer in the batch transaction, and stores the new answer in the same
savepoint as the change itself, so a change and its stored answer commit together or not at all.

A stored answer holds no secret in clear: one that would (a new API key, a customer token) is
stored as a 409 that says it was shown once (`api.writes`), one about a customer may be sealed
with their data key. Answers replay for the writer's retention (24 h by default); an older one
is ignored, and `storage.retention` purges it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class IdempotencyScope:
    key: str  # principal + client key
    fingerprint: str  # hash of the request
    render: Callable[[Any], tuple[int, bytes]]  # the job's result as the answer to store


class Replayed(Exception):
    """The request was already answered: here is that answer.

    An answer about one customer may be sealed with that customer's data key (`sealed_for`):
    the caller opens it with the key, or finds the customer erased."""

    def __init__(
        self, status: int, body: bytes, *, sealed_for: UUID | None = None, aad: str = ""
    ) -> None:
        super().__init__("replayed")
        self.status = status
        self.body = body
        self.sealed_for = sealed_for
        self.aad = aad


def answer_aad(key: str) -> str:
    return f"idempotency:{key}"


class KeyReused(Exception):
    """The same key came with a different request."""


_current: ContextVar[IdempotencyScope | None] = ContextVar("consentry_idempotency", default=None)


@contextmanager
def idempotency_scope(scope: IdempotencyScope | None) -> Iterator[None]:
    token = _current.set(scope)
    try:
        yield
    finally:
        _current.reset(token)


def current_scope() -> IdempotencyScope | None:
    scope = _current.get()
    _current.set(None)  # one scope serves one submitted job
    return scope
