"""Every field error of a body at once, with the allowed values named."""

from __future__ import annotations

from typing import Any

import pytest

from consentry.access.schemas import ApiKeyIn
from consentry.http.validation import allowed_values, field_errors
from consentry.ledger.schemas import ConsentRequest, DecisionValue

SCOPES = "admin, compliance:read, compliance:write, backend:write, backend:read"


@pytest.mark.parametrize(
    ("body", "tp", "errors"),
    [
        ({"name": "k", "scopes": ["admin"]}, ApiKeyIn, []),
        (
            {"name": "k", "scopes": ["read"]},
            ApiKeyIn,
            [("scopes[0]", f"'read' is not one of: {SCOPES}")],
        ),
        (
            {"name": "", "scopes": ["admin", "write"]},
            ApiKeyIn,
            [
                ("name", "Expected `str` of length >= 1"),
                ("scopes[1]", f"'write' is not one of: {SCOPES}"),
            ],
        ),
        ({"name": "k", "scopes": []}, ApiKeyIn, [("scopes", "Expected `array` of length >= 1")]),
        (
            {"decisions": [{"purpose": "analytics", "decision": 1}, {"purpose": "x"}], "s": 1},
            ConsentRequest,
            [
                ("decisions[0].decision", "1 is not one of: granted, denied, withdrawn"),
                ("decisions[1].decision", "required, but missing"),
                ("s", "unknown field; allowed: decisions, evidence, source"),
            ],
        ),
        ([], ApiKeyIn, [("body", "Expected `object`, got `array`")]),
    ],
)
def test_field_errors(body: Any, tp: Any, errors: list[tuple[str, str]]) -> None:
    """Each bad field is reported with its path and a detail that says what would do."""
    assert field_errors(body, tp) == errors


def test_many_errors_are_capped() -> None:
    """A body of thousands of bad items answers with at most 50 errors."""
    body = {"name": "k", "scopes": ["x"] * 5000}
    assert len(field_errors(body, ApiKeyIn)) == 50


DECISIONS = ["granted", "denied", "withdrawn"]


@pytest.mark.parametrize(
    ("tp", "values"),
    [(DecisionValue, DECISIONS), (DecisionValue | None, DECISIONS), (str, None)],
)
def test_allowed_values(tp: Any, values: list[str] | None) -> None:
    """A Literal names its values, optional or not; other types have none."""
    assert allowed_values(tp) == values
