"""The gate: a plugin sees a customer only as far as consent and the policy allow, every view
is audited, and a withdrawal takes effect on the very next view."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.boot import close_core, open_core
from consentry.clock import FrozenClock
from consentry.core.principals import SYSTEM
from consentry.core.runtime import Core
from consentry.customers import records as customers
from consentry.domain.consent import Decision, Source
from consentry.host.gate import CoreGate
from consentry.host.manager import Plugins
from consentry.ledger import consent_reads, consents
from consentry.plugins.types import GateRefused
from consentry.query.ast import Condition
from consentry.settings import Settings

ATTRIBUTES = {
    "first_name": "Ada",  # identity
    "plan": "pro",  # profile
    "monthly_spend": 120,  # financial (sensitive)
    "country": "FR",  # location
    "last_seen_at": "2026-11-01",  # behavior
}
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def frozen(settings: Settings) -> AsyncIterator[tuple[Core, FrozenClock]]:
    clock = FrozenClock(START)
    core = await open_core(settings, clock=clock, plugins=Plugins.of())
    try:
        yield core, clock
    finally:
        await close_core(core)


async def customer(core: Core, external_id: str, region: str = "EU") -> UUID:
    made, _ = await customers.upsert(
        core,
        customers.CustomerUpsert(
            external_id, region, {"email": f"{external_id}@example.com"}, dict(ATTRIBUTES)
        ),
        SYSTEM,
    )
    return made.id


async def decide(core: Core, subject_id: UUID, region: str, purpose: str, decision: str) -> None:
    await consents.record_for(
        core,
        subject_id,
        region,
        consents.RecordRequest(
            [consents.DecisionIn(purpose, Decision(decision))],
            Source.API,
            consents.Evidence(),
            gpc=False,
        ),
        SYSTEM,
    )


def categories_of(core: Core, capability: str) -> set[str]:
    return {c for p in core.policy.gates[capability] for c in core.policy.purposes[p].categories}


async def test_a_view_holds_only_the_fields_its_purposes_use(frozen: tuple[Core, Any]) -> None:
    core, _ = frozen
    sid = await customer(core, "g-1")
    await decide(core, sid, "EU", "personalization", "granted")
    view = await CoreGate(core, "probe").view("templates.render", sid)
    allowed = categories_of(core, "templates.render")
    assert view.purposes == ("personalization",)
    assert set(view.attributes) == {k for k in ATTRIBUTES if core.policy.category_of(k) in allowed}
    assert "monthly_spend" not in view.attributes  # financial is not personalization's
    assert view.identities == {}  # contact is not personalization's
    assert view.attributes["first_name"] == "Ada"  # decrypted: identity is sensitive
    rows = await core.db.fetch("SELECT * FROM audit_log WHERE action = 'plugin.view'")
    assert len(rows) == 1 and rows[0]["actor"] == "plugin:probe"
    details = json.loads(rows[0]["details"])
    assert details["capability"] == "templates.render"
    assert details["purposes"] == ["personalization"] and "first_name" in details["fields"]
    assert "Ada" not in rows[0]["details"]


async def test_no_consent_no_view_and_the_refusal_is_audited(frozen: tuple[Core, Any]) -> None:
    core, _ = frozen
    sid = await customer(core, "g-2")
    gate = CoreGate(core, "probe")
    with pytest.raises(GateRefused) as refused:
        await gate.view("templates.render", sid)
    assert refused.value.reasons and "personalization" in str(refused.value)
    assert not await gate.allowed("templates.render", sid)
    with pytest.raises(GateRefused, match="no gate"):
        await gate.view("no.such.capability", sid)
    with pytest.raises(GateRefused, match="no such customer"):
        await gate.view("templates.render", UUID(int=7))
    rows = await core.db.fetch("SELECT * FROM audit_log WHERE action = 'plugin.view_refused'")
    assert len(rows) == 3


async def test_withdrawal_takes_effect_on_the_next_view(frozen: tuple[Core, Any]) -> None:
    core, _ = frozen
    sid = await customer(core, "g-3")
    gate = CoreGate(core, "probe")
    await decide(core, sid, "EU", "personalization", "granted")
    assert (await gate.view("templates.render", sid)).attributes
    await decide(core, sid, "EU", "personalization", "withdrawn")
    with pytest.raises(GateRefused, match="withdrawn"):
        await gate.view("templates.render", sid)


PURPOSES = ["personalization", "marketing_email", "analytics", "sale_or_share", "product_updates"]
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("decide"),
            st.sampled_from(PURPOSES),
            st.sampled_from(["granted", "denied", "withdrawn"]),
        ),
        st.tuples(st.just("wait"), st.sampled_from([1, 30, 400, 800]), st.just("")),
    ),
    max_size=6,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=steps, region=st.sampled_from(["EU", "US-CA", "US", "JP"]))
async def test_every_capability_runs_iff_the_decision_allows_it(
    frozen: tuple[Core, FrozenClock], history: list[tuple[str, Any, str]], region: str
) -> None:
    """Random histories of grants, denials, withdrawals and expiries: for every gated capability
    the gate gives a view iff the core's own check allows every purpose it needs, and the view
    never holds a field those purposes do not cover."""
    core, clock = frozen
    external_id = f"h-{clock.now.timestamp():.0f}-{len(history)}-{region}"
    clock.advance(seconds=1)
    sid = await customer(core, external_id, region)
    for kind, a, b in history:
        if kind == "decide":
            await decide(core, sid, region, a, b)
        else:
            clock.advance(days=a)
    gate = CoreGate(core, "probe")
    for capability, purposes in core.policy.gates.items():
        checks = [await consent_reads.check(core, external_id, p) for p in purposes]
        expected = all(v.allowed for v in checks)
        assert await gate.allowed(capability, sid) == expected, capability
        if not expected:
            with pytest.raises(GateRefused):
                await gate.view(capability, sid)
            continue
        view = await gate.view(capability, sid)
        allowed = categories_of(core, capability)
        assert {core.policy.category_of(k) for k in view.attributes} <= allowed
        assert {core.policy.identities[k] for k in view.identities} <= allowed
        assert set(view.attributes) == {
            k for k in ATTRIBUTES if core.policy.category_of(k) in allowed
        }


async def test_set_queries_go_through_the_gate(frozen: tuple[Core, FrozenClock]) -> None:
    """A set-based plugin (segments) never writes SQL over core tables: it hands the gate a
    filter tree; the gate refuses what the purpose may not use, adds consent, and audits."""
    core, _ = frozen
    consented = await customer(core, "q-1", "US")  # opt-out region: allowed without a record
    await customer(core, "q-2", "EU")  # opt-in region, no consent: never counted
    gate = CoreGate(core, "segments")
    plan_is_pro = Condition("attr", "plan", "=", "pro")
    assert await gate.count("segments.membership", "marketing_email", plan_is_pro) == 1
    ids = await gate.members("segments.membership", "marketing_email", plan_is_pro, limit=10)
    assert ids == [consented]
    with pytest.raises(GateRefused, match="does not gate"):
        await gate.count("segments.membership", "analytics", plan_is_pro)
    with pytest.raises(GateRefused, match="sensitive"):
        await gate.count(
            "segments.membership", "marketing_email", Condition("attr", "monthly_spend", ">", 5)
        )
    with pytest.raises(GateRefused, match="location data"):
        await gate.count(
            "segments.membership", "marketing_email", Condition("attr", "country", "=", "FR")
        )
    rows = await core.db.fetch("SELECT * FROM audit_log WHERE action = 'plugin.query'")
    kinds = [json.loads(r["details"])["kind"] for r in rows]
    assert kinds == ["count", "members"] and {r["actor"] for r in rows} == {"plugin:segments"}
    assert json.loads(rows[1]["details"])["subjects"] == [str(consented)]
