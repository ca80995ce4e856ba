"""The consent condition compiled to SQL agrees with the domain's `evaluate` for every purpose,
over random histories: grants, pending double opt-ins, denials, withdrawals, per channel or
purpose-wide, expiries before, at and after now, old and current notices, every region (and an
empty or unknown one). Each history is written through the ledger's own `append`, so the state
rows are the real projection."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.core.runtime import Core
from consentry.domain.consent import Decision
from consentry.domain.decision import evaluate
from consentry.ledger.records import LedgerRecord, append, to_state
from consentry.query.consent_sql import consent_condition
from consentry.storage.writer import WriteTx

from .conftest import T0

REGIONS = ["EU", "UK", "US-CA", "US", "JP", "OTHER", "", "XX"]
PURPOSES = [
    "essential",
    "personalization",
    "marketing_email",
    "product_updates",
    "analytics",
    "sale_or_share",
]
CHANNELS = ["", "email", "in_app", "push"]

step = st.fixed_dictionaries(
    {
        "purpose": st.sampled_from(PURPOSES),
        "channel": st.sampled_from(CHANNELS),
        "decision": st.sampled_from(list(Decision)),
        "notice": st.sampled_from(["1", "2"]),
        "gap_hours": st.integers(1, 24 * 400),
        # None: no expiry; else hours from now (0: exactly now, which is already expired)
        "expires_hours": st.none() | st.sampled_from([0, -1, 1]) | st.integers(-9000, 9000),
    }
)
subject = st.fixed_dictionaries(
    {"region": st.sampled_from(REGIONS), "history": st.lists(step, max_size=6)}
)


async def write(core: Core, subjects: list[dict[str, Any]]) -> tuple[str, list[uuid.UUID]]:
    batch = uuid.uuid4().hex[:10]
    ids = [uuid.uuid4() for _ in subjects]

    async def job(tx: WriteTx) -> None:
        for i, (sid, s) in enumerate(zip(ids, subjects, strict=True)):
            await tx.execute(
                "INSERT INTO subjects (id, external_id, region, attributes, created_at,"
                " updated_at, version) VALUES (?, ?, ?, '{}', ?, ?, 1)",
                sid,
                f"{batch}-{i}",
                s["region"],
                T0,
                T0,
            )
            total = sum(h["gap_hours"] for h in s["history"])
            at = T0 - timedelta(hours=total)
            for h in s["history"]:
                at += timedelta(hours=h["gap_hours"]) - timedelta(microseconds=1)
                expires = (
                    None if h["expires_hours"] is None else T0 + timedelta(hours=h["expires_hours"])
                )
                await append(
                    tx,
                    sid,
                    LedgerRecord(
                        id=uuid.uuid4(),
                        purpose=h["purpose"],
                        channel=h["channel"],
                        decision=h["decision"].value,
                        legal_basis="consent",
                        notice_version=h["notice"],
                        notice_hash="",
                        language="en",
                        policy_version=core.policy.version,
                        source="api",
                        actor="test",
                        recorded_at=at,
                        expires_at=expires,
                        evidence={},
                    ),
                )

    await core.writer.submit(job)
    return batch, ids


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(subjects=st.lists(subject, min_size=1, max_size=6))
async def test_consent_sql_agrees_with_evaluate(
    seg_core: Core, subjects: list[dict[str, Any]]
) -> None:
    core = seg_core
    batch, ids = await write(core, subjects)
    now = core.clock()
    for purpose in PURPOSES:
        condition = consent_condition(core.policy, purpose, postgres=core.db.is_postgres, now=now)
        rows = await core.db.fetch(
            f"SELECT s.id FROM subjects s WHERE s.external_id LIKE ? AND {condition.sql}",
            f"{batch}-%",
            *condition.params,
        )
        members = {uuid.UUID(str(r["id"])) for r in rows}
        for sid, s in zip(ids, subjects, strict=True):
            states = await core.db.fetch("SELECT * FROM consent_state WHERE subject_id = ?", sid)
            verdict = evaluate(
                core.policy,
                region=s["region"],
                purpose=purpose,
                states={(r["purpose"], r["channel"]): to_state(r) for r in states},
                now=now,
            )
            assert (sid in members) == verdict.allowed, (purpose, s, verdict.reasons)
