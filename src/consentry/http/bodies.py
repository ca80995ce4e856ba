"""JSON request bodies: nesting is bounded before decoding, so no body can exhaust the stack.

msgspec decodes recursively; `'[' * 1000` raised RecursionError (a 500) on every JSON endpoint,
public ones included. `BoundedRequest.json` refuses a body nested deeper than `MAX_JSON_DEPTH`
with a 400 before decoding it. The scan costs two `bytes.count` calls for ordinary bodies (at
most `MAX_JSON_DEPTH` brackets in all); only bodies with more brackets are scanned properly,
strings skipped, and a deep one is refused after its first chunk.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from litestar import Request

from consentry.domain.errors import ServiceError

JSON_BODY = "json_body"  # where in the scope's state the decoded body is kept, for error reports
MAX_JSON_DEPTH = 64  # far beyond any of our schemas (the deepest nests 4-5 levels)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
_CHUNK = 4096


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects in `body` nest deeper than `limit` (brackets inside strings do
    not count; malformed JSON is left for the decoder to refuse)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    level = 0
    for start in range(0, len(brackets), _CHUNK):
        levels = list(
            accumulate(map(_STEP.__getitem__, brackets[start : start + _CHUNK]), initial=level)
        )
        if max(levels) > limit:
            return True
        level = levels[-1]
    return False


class TooDeep(ServiceError):
    status = 400
    title = "Bad request"


class BoundedRequest(Request[Any, Any, Any]):
    """Litestar's request, with JSON nesting bounded before the body is decoded."""

    async def json(self) -> Any:
        if too_deep(await self.body()):
            raise TooDeep(
                f"the body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels,"
                f" the most this API accepts"
            )
        value = await super().json()
        self.scope["state"][JSON_BODY] = value
        return value
