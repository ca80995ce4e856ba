"""JSON nesting is measured before decoding: brackets in strings do not count."""

from __future__ import annotations

import time

import pytest

from consentry.http.bodies import MAX_JSON_DEPTH, too_deep


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b"", False),
        (b'{"a": [1, 2, {"b": null}]}', False),
        (nested(MAX_JSON_DEPTH), False),
        (nested(MAX_JSON_DEPTH + 1), True),
        (b'{"a":' * 40 + b"1" + b"}" * 40, False),
        (b'{"a":[' * 40 + b"1" + b"]}" * 40, True),
        (b'["' + b"[" * 500 + b'"]', False),  # brackets inside a string
        (b'["\\"' + b"[" * 500 + b'"]', False),  # after an escaped quote, still inside it
        (b"[" * 1000, True),  # malformed and deep: refused before decoding
        (b"[]" * 10_000, False),  # many brackets, shallow
    ],
)
def test_depth(body: bytes, deep: bool) -> None:
    """Nesting beyond the limit is found, and only then."""
    assert too_deep(body) is deep


def test_a_large_shallow_body_is_scanned_quickly() -> None:
    """A 1 MiB body of shallow arrays is scanned in well under a tenth of a second."""
    body = b"[" + b"[1]," * 262_000 + b"[1]]"
    started = time.perf_counter()
    assert not too_deep(body)
    assert time.perf_counter() - started < 0.1
