"""The JSON Schema of the filter language agrees with the parser on syntax, and is what the
OpenAPI document gives for a segment's filter."""

from __future__ import annotations

import json
from typing import Any

import pytest
from consentry_segments.filters import FILTER_JSON_SCHEMA, MAX_DEPTH, parse
from jsonschema import Draft202012Validator

from consentry.cli import openapi_document
from consentry.policy.loader import load_policy
from consentry.settings import DEFAULT_POLICY

POLICY = load_policy(DEFAULT_POLICY)
VALIDATOR = Draft202012Validator(FILTER_JSON_SCHEMA)

VALID = [
    {"and": []},
    {"attr": "plan", "op": "=", "value": "pro"},
    {"attr": "seats", "op": ">", "value": 3},
    {"attr": "plan", "op": "!=", "value": True},
    {"attr": "plan", "op": "exists"},
    {"attr": "company", "op": "in", "value": ["acme", 3, 4.5]},
    {"attr": "upgraded_at", "op": "within_days", "value": 30},
    {"not": {"attr": "signup_at", "op": "after", "value": "2025-01-01T00:00:00Z"}},
    {"attr": "signup_at", "op": "before", "value": "2025-01-01T09:30:00.5+09:00"},
    {
        "or": [
            {"attr": "plan", "op": "=", "value": "pro"},
            {"and": [{"attr": "seats", "op": ">=", "value": 10}]},
        ]
    },
]
# Syntax errors, from test_segments_filters.py: the parser and the schema refuse each.
INVALID = [
    [],
    {"attr": "plan", "op": "~", "value": 1},
    {"attr": "Plan", "op": "=", "value": 1},
    {"attr": "plan", "op": "=", "value": None},
    {"attr": "plan", "op": "=", "value": 2**64},
    {"attr": "plan", "op": "=", "value": "a\x00"},
    {"attr": "plan", "op": "in", "value": []},
    {"attr": "plan", "op": "in", "value": ["a", True]},
    {"attr": "plan", "op": ">", "value": True},
    {"attr": "plan", "op": "before", "value": "2026-01-01"},
    {"attr": "plan", "op": "within_days", "value": 0},
    {"attr": "plan", "op": "=", "value": 1, "x": 2},
    {"attr": "plan", "op": "exists", "value": 1},
    {"attr": "plan", "op": "="},
    {"or": []},
    {"and": [], "or": []},
    {"events": {"name": "Feature"}, "op": ">=", "value": 1},
    {"events": {"name": "feature_used"}, "op": ">=", "value": -1},
    {
        "events": {"name": "feature_used", "where": [{"attr": "plan", "op": "exists"}]},
        "op": "=",
        "value": 1,
    },
]
EVENTS = {
    "events": {
        "name": "feature_used",
        "where": [{"prop": "feature", "op": "=", "value": "reports"}],
        "last_days": 30,
    },
    "op": "<",
    "value": 5,
}


def test_schema_is_valid_json_schema() -> None:
    Draft202012Validator.check_schema(FILTER_JSON_SCHEMA)


@pytest.mark.parametrize("raw", [*VALID, EVENTS])
def test_valid_filters_fit_the_schema(raw: Any) -> None:
    assert VALIDATOR.is_valid(raw), [e.message for e in VALIDATOR.iter_errors(raw)]


@pytest.mark.parametrize("raw", VALID)
def test_valid_filters_parse(raw: Any) -> None:
    """The table above is right: the parser takes each (policy rules included)."""
    parse(POLICY, "marketing_email", raw)


@pytest.mark.parametrize("raw", INVALID)
def test_invalid_filters_do_not_fit_the_schema(raw: Any) -> None:
    assert not VALIDATOR.is_valid(raw)


def test_schema_does_not_limit_depth_the_parser_does() -> None:
    """Depth and size limits are the parser's alone (said in the schema's description)."""
    raw: dict[str, Any] = {"attr": "plan", "op": "exists"}
    for _ in range(MAX_DEPTH + 1):
        raw = {"not": raw}
    assert VALIDATOR.is_valid(raw)
    assert str(MAX_DEPTH) in FILTER_JSON_SCHEMA["$defs"]["SegmentFilter"]["description"]


def test_openapi_documents_segment_filters_with_the_schema() -> None:
    """SegmentIn, PreviewIn and SegmentOut refer to SegmentFilter, hoisted into components."""
    schemas = json.loads(openapi_document())["components"]["schemas"]
    for name in ("SegmentIn", "PreviewIn", "SegmentOut"):
        assert schemas[name]["properties"]["filter"]["$ref"] == "#/components/schemas/SegmentFilter"
    for name, definition in FILTER_JSON_SCHEMA["$defs"].items():
        rebased = json.dumps(definition).replace("#/$defs/", "#/components/schemas/")
        assert schemas[name] == json.loads(rebased)
