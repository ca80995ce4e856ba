"""The filter language without a database: validation paths and messages, and compiled SQL
that carries every name and value as a bound parameter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from consentry_segments.filters import MAX_DEPTH, Condition, EventCount, parse

from consentry.domain.errors import Invalid
from consentry.policy.loader import load_policy
from consentry.query.sql import compile_filter
from consentry.settings import DEFAULT_POLICY

POLICY = load_policy(DEFAULT_POLICY)
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def error(raw: Any, purpose: str = "marketing_email") -> Invalid:
    with pytest.raises(Invalid) as caught:
        parse(POLICY, purpose, raw)
    return caught.value


def test_issue_example_names_the_sensitive_attribute() -> None:
    raw = {
        "and": [
            {"attr": "plan", "op": "=", "value": "pro"},
            {"attr": "upgraded_at", "op": "within_days", "value": 30},
            {"attr": "monthly_spend", "op": ">", "value": 50},
        ]
    }
    e = error(raw)
    assert e.field == "filter.and[2].attr"
    assert e.detail.startswith("and[2].attr: attribute 'monthly_spend' is sensitive (financial)")
    assert "blind index, which it does not have" in e.detail


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ([], "filter", "expected an object"),
        ({"attr": "plan", "op": "~", "value": 1}, "filter.op", "op must be one of"),
        ({"attr": "Plan", "op": "=", "value": 1}, "filter.attr", "lowercase"),
        ({"attr": "plan", "op": "=", "value": None}, "filter.value", "got null"),
        ({"attr": "plan", "op": "=", "value": 2**64}, "filter.value", "64 bits"),
        ({"attr": "plan", "op": "=", "value": "a\x00"}, "filter.value", "NUL"),
        ({"attr": "plan", "op": "in", "value": []}, "filter.value", "non-empty"),
        ({"attr": "plan", "op": "in", "value": ["a", True]}, "filter.value[1]", "booleans"),
        ({"attr": "plan", "op": "before", "value": "2026-01-01"}, "filter.value", "zone"),
        ({"attr": "plan", "op": "within_days", "value": 0}, "filter.value", "days"),
        ({"attr": "plan", "op": "=", "value": 1, "x": 2}, "filter.x", "unexpected key"),
        ({"or": []}, "filter.or", "at least one"),
        (
            {"not": {"and": [{"attr": "first_name", "op": "exists"}]}},
            "filter.not.and[0].attr",
            "sensitive (identity)",
        ),
        (
            {"attr": "country", "op": "=", "value": "JP"},
            "filter.attr",
            "location data, which purpose 'marketing_email' does not use",
        ),
        (
            {"events": {"name": "feature_used"}, "op": ">=", "value": 1},
            "filter.events",
            "events are behavior data",
        ),
    ],
)
def test_errors_point_at_the_part(raw: Any, field: str, words: str) -> None:
    e = error(raw)
    assert e.field == field
    assert words in e.detail


def test_depth_is_limited() -> None:
    raw: dict[str, Any] = {"attr": "plan", "op": "exists"}
    for _ in range(MAX_DEPTH + 1):
        raw = {"not": raw}
    assert "nest at most" in error(raw).detail


def test_unknown_attributes_follow_policy() -> None:
    """`unknown_attributes: profile` in the default policy: an undeclared attribute is profile."""
    segment = parse(POLICY, "marketing_email", {"attr": "seats", "op": ">", "value": 3})
    assert segment.root == Condition("attr", "seats", ">", 3)


def test_purpose_must_be_gated() -> None:
    e = error({"and": []}, purpose="analytics")
    assert e.field == "purpose"


@pytest.mark.parametrize("postgres", [False, True])
def test_names_and_values_are_bound(postgres: bool) -> None:
    evil = "x'; DROP TABLE subjects; --"
    segment = parse(
        POLICY,
        "marketing_email",
        {
            "or": [
                {"attr": "plan", "op": "=", "value": evil},
                {"attr": "company", "op": "in", "value": [evil, 3, 4.5]},
                {"attr": "upgraded_at", "op": "within_days", "value": 7},
                {"not": {"attr": "signup_at", "op": "after", "value": "2025-01-01T00:00:00Z"}},
            ]
        },
    )
    compiled = compile_filter(segment.root, postgres=postgres, now=NOW)
    for word in ("DROP", "plan", "company", "upgraded_at", "signup_at"):
        assert word not in compiled.sql
    assert compiled.sql.count("?") == len(compiled.params)
    assert evil in compiled.params


def test_event_count_parses() -> None:
    wide = load_policy(DEFAULT_POLICY)
    spec = wide.purposes["marketing_email"]
    object.__setattr__(spec, "categories", (*spec.categories, "behavior"))
    segment = parse(
        wide,
        "marketing_email",
        {
            "events": {
                "name": "feature_used",
                "where": [{"prop": "feature", "op": "=", "value": "reports"}],
                "last_days": 30,
            },
            "op": "<",
            "value": 5,
        },
    )
    assert segment.root == EventCount(
        "feature_used", (Condition("prop", "feature", "=", "reports"),), 30, "<", 5
    )
    compiled = compile_filter(segment.root, postgres=False, now=NOW)
    assert "NOT IN" in compiled.sql  # "< 5" holds at zero: customers without events match
