"""Fuzz: random filter JSON (quotes, SQL, unicode, NUL, huge numbers, deep nesting) is either
refused with `Invalid` or runs; nothing else is raised and the core tables do not change."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from consentry_segments.filters import parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.core.runtime import Core
from consentry.domain.errors import Invalid
from consentry.query import members
from consentry.storage.writer import WriteTx

from .conftest import T0

NASTY = st.sampled_from(
    [
        "'; DROP TABLE subjects; --",
        '" OR 1=1 --',
        "plan') OR ('1'='1",
        "$.plan",
        '$."a"',
        "\x00",
        "a\x00b",
        "ünïcødé ✓ 🎉",
        "?",
        "$1",
        "2026-02-30",
        "2026-01-01T00:00:00Z",
        "",
    ]
)
NAMES = (
    st.sampled_from(
        ["plan", "seats", "upgraded_at", "country", "monthly_spend", "first_name", "x" * 70, "Plan"]
    )
    | NASTY
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | NASTY
)
OPS = st.sampled_from(
    [
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "in",
        "exists",
        "within_days",
        "older_than_days",
        "before",
        "after",
        "like",
        "; DROP",
    ]
)


def condition(source: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {source: NAMES, "op": OPS},
        optional={"value": SCALARS | st.lists(SCALARS, max_size=4), "junk": SCALARS},
    )


# Mostly valid conditions with hostile values: these reach the database.
VALID_OPS = ["=", "!=", "<", "<=", ">", ">=", "in", "within_days", "older_than_days", "before"]
runnable = st.builds(
    lambda name, op, value: {"attr": name, "op": op, "value": value},
    st.sampled_from(["plan", "seats", "upgraded_at", "company", "signup_at"]),
    st.sampled_from(VALID_OPS),
    NASTY
    | st.integers(-(2**63) + 1, 2**63 - 1)
    | st.integers(1, 36500)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(NASTY | st.integers(-5, 5), min_size=1, max_size=3)
    | st.just("2026-01-01T00:00:00+09:00"),
)

events = st.fixed_dictionaries(
    {
        "events": st.fixed_dictionaries(
            {"name": st.sampled_from(["feature_used", "Bad Name", "a'b"]) | NASTY},
            optional={
                "where": st.lists(condition("prop"), max_size=3),
                "last_days": SCALARS,
            },
        ),
        "op": OPS,
        "value": SCALARS,
    }
)

filters = st.recursive(
    runnable
    | runnable
    | condition("attr")
    | events
    | SCALARS
    | st.dictionaries(st.text(max_size=5), SCALARS),
    lambda inner: (
        st.dictionaries(
            st.sampled_from(["and", "or"]), st.lists(inner, max_size=4), min_size=1, max_size=1
        )
        | st.builds(lambda f: {"not": f}, inner)
        | st.lists(inner, max_size=3)
    ),
    max_leaves=25,
)
deep = st.integers(10, 400).map(lambda n: _nest(n))


def _nest(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"attr": "plan", "op": "exists"}
    for _ in range(depth):
        node = {"not": node}
    return node


CORE_TABLES = ("subjects", "events", "consent_state", "consent_records", "preference_state")


async def counts(core: Core) -> dict[str, int]:
    out = {}
    for table in CORE_TABLES:
        rows = await core.db.fetch(f"SELECT COUNT(*) AS n FROM {table}")
        out[table] = int(rows[0]["n"])
    return out


async def seed(core: Core) -> None:
    async def job(tx: WriteTx) -> None:
        for i, attrs in enumerate(
            [
                '{"plan": "pro", "seats": 3, "upgraded_at": "2026-02-20T00:00:00Z"}',
                '{"plan": "\'; DROP TABLE subjects; --", "seats": "3",'
                ' "upgraded_at": "2026-02-30"}',
                '{"seats": 1e300, "upgraded_at": "yesterday"}',
            ]
        ):
            await tx.execute(
                "INSERT INTO subjects (id, external_id, region, attributes, created_at,"
                " updated_at, version) VALUES (?, ?, 'US', ?, ?, ?, 1)",
                uuid4(),
                f"fuzz-{i}",
                attrs,
                T0,
                T0,
            )

    await core.writer.submit(job)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=filters | deep, purpose=st.sampled_from(["marketing_email"] * 4 + ["analytics", "'"]))
async def test_random_filters_are_refused_or_run(seg_core: Core, raw: Any, purpose: str) -> None:
    core = seg_core
    if not await core.db.fetch("SELECT id FROM subjects WHERE external_id = 'fuzz-0'"):
        await seed(core)
    before = await counts(core)
    try:
        segment = parse(core.policy, purpose, raw)
    except Invalid as exc:
        assert exc.detail and exc.field
    else:
        n = await members.count(
            core.db,
            core.policy,
            segment.purpose,
            segment.root,
            postgres=core.db.is_postgres,
            now=core.clock(),
        )
        assert 0 <= n <= before["subjects"]
        await members.members(
            core.db,
            core.policy,
            segment.purpose,
            segment.root,
            postgres=core.db.is_postgres,
            now=core.clock(),
            after=None,
            limit=10,
        )
    assert await counts(core) == before


async def test_hostile_values_run_and_match_literally(seg_core: Core) -> None:
    """A value full of SQL is just a string: it matches the customer whose plan is that string."""
    await seed(seg_core)
    segment = parse(
        seg_core.policy,
        "marketing_email",
        {"attr": "plan", "op": "=", "value": "'; DROP TABLE subjects; --"},
    )
    # The seeded customers are in US, an opt-out region: no record means allowed.
    n = await members.count(
        seg_core.db,
        seg_core.policy,
        segment.purpose,
        segment.root,
        postgres=seg_core.db.is_postgres,
        now=T0,
    )
    assert n == 1
    assert (await counts(seg_core))["subjects"] == 3
