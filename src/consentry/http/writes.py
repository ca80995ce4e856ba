"""Answering a write: the same rendering serves the first answer and its idempotent replays."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response

from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.crypto.envelope import decrypt
from consentry.domain.errors import Gone, Invalid
from consentry.http.problems import problem_body
from consentry.http.schemas import ShownOnce
from consentry.storage.idempotency import IdempotencyScope, Replayed, idempotency_scope

T = TypeVar("T")
MAX_KEY = 200


def _scope(
    request: Request[Any, Any, Any],
    principal: Principal,
    body: bytes,
    render: Callable[[Any], tuple[int, bytes]],
) -> IdempotencyScope | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise Invalid(
            f"Idempotency-Key must be 1-{MAX_KEY} printable characters", field="Idempotency-Key"
        )
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return IdempotencyScope(f"{principal.actor}:{key}", digest.hexdigest(), render)


async def respond(
    request: Request[Any, Any, Any],
    principal: Principal,
    call: Callable[[], Awaitable[T]],
    render: Callable[[T], tuple[int, msgspec.Struct]],
) -> Response[Any]:
    """Run a write with the request's Idempotency-Key (if any) and answer it as JSON.

    An answer that holds a secret (`ShownOnce`: a new API key, a customer token) is stored as a
    409 saying it was shown once: a replay never needs, and the store never holds, the secret.
    """

    def encoded(result: T) -> tuple[int, bytes]:
        status, body = render(result)
        return status, msgspec.json.encode(body)

    def stored(result: T) -> tuple[int, bytes]:
        status, body = render(result)
        if isinstance(body, ShownOnce):
            return 409, problem_body(request, 409, body.replay_detail())
        return status, msgspec.json.encode(body)

    raw = await request.body()
    try:
        with idempotency_scope(_scope(request, principal, raw, stored)):
            result = await call()
    except Replayed as replay:
        if replay.sealed_for is not None:
            replay.body = await _unsealed(request.app.state.core, replay)
        raise
    status, content = encoded(result)
    return Response(content, status_code=status, media_type="application/json")


async def _unsealed(core: Core, replay: Replayed) -> bytes:
    """A stored answer about one customer is sealed with their data key; erased, it is gone."""
    assert replay.sealed_for is not None
    key = await core.keys.get(str(replay.sealed_for))
    if key is None:
        raise Gone(
            "this request was answered, but the customer it concerned has since been erased;"
            " the answer is no longer held"
        )
    return decrypt(key, replay.body, aad=replay.aad)
