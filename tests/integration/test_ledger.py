"""The consent ledger through the HTTP API, on both engines: state is a projection of an
append-only ledger, double opt-in, Global Privacy Control and expiry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.access.keys import bootstrap_admin_key
from consentry.app import create_app
from consentry.boot import close_core, open_core
from consentry.clock import FrozenClock
from consentry.core.runtime import Core
from consentry.domain.consent import ConsentState, Decision, Preferences
from consentry.domain.decision import evaluate
from consentry.ledger.projection import drift
from consentry.policy.loader import load_policy
from consentry.settings import DEFAULT_POLICY, Settings

Client = httpx.AsyncClient
POLICY = load_policy(DEFAULT_POLICY)
START = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)


# -- helpers -------------------------------------------------------------------------------------


@asynccontextmanager
async def frozen_client(
    settings: Settings, clock: FrozenClock
) -> AsyncIterator[tuple[Core, Client]]:
    """A core on a frozen clock and an admin HTTP client on it."""
    core = await open_core(settings, clock=clock)
    try:
        key = await bootstrap_admin_key(core)
        assert key is not None
        app = create_app(settings, core=core)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            yield core, client
    finally:
        await close_core(core)


_GUARD_SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS consent_records_no_update BEFORE UPDATE ON consent_records"
    " BEGIN SELECT RAISE(ABORT, 'consent_records is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS consent_records_no_delete BEFORE DELETE ON consent_records"
    " BEGIN SELECT RAISE(ABORT, 'consent_records is append-only'); END",
]
_GUARD_POSTGRES = [
    "CREATE OR REPLACE FUNCTION consent_records_append_only() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN RAISE EXCEPTION 'consent_records is append-only'; END $$",
    "DROP TRIGGER IF EXISTS consent_records_append_only ON consent_records",
    "CREATE TRIGGER consent_records_append_only BEFORE UPDATE OR DELETE ON consent_records"
    " FOR EACH ROW EXECUTE FUNCTION consent_records_append_only()",
]


async def guard_append_only(core: Core) -> None:
    """A database trigger that makes any UPDATE or DELETE of a ledger row fail loudly."""
    if core.caches.get("append_only_guard"):
        return
    async with core.db.transaction() as tx:
        for ddl in _GUARD_POSTGRES if core.db.is_postgres else _GUARD_SQLITE:
            await tx.execute(ddl)
    core.caches["append_only_guard"] = True


async def ledger_rows(core: Core) -> dict[str, dict[str, Any]]:
    rows = await core.db.fetch("SELECT * FROM consent_records")
    return {str(r["id"]): r for r in rows}


def assert_unchanged(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> None:
    """Every row that existed before still exists, identical."""
    missing = before.keys() - after.keys()
    assert not missing, f"ledger rows deleted: {sorted(missing)[:5]}"
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, f"ledger rows changed: {changed[:5]}"


async def create_customer(client: Client, external_id: str, region: str) -> str:
    r = await client.put(f"/v1/customers/{external_id}", json={"region": region})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def check(
    client: Client, external_id: str, purpose: str, channel: str | None = None
) -> dict[str, Any]:
    params = {"purpose": purpose, **({"channel": channel} if channel else {})}
    r = await client.get(f"/v1/customers/{external_id}/check", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def record(
    client: Client,
    external_id: str,
    *decisions: dict[str, str],
    gpc: bool = False,
    status: int = 201,
) -> dict[str, Any]:
    r = await client.post(
        f"/v1/customers/{external_id}/consents",
        json={"decisions": list(decisions)},
        headers={"Sec-GPC": "1"} if gpc else {},
    )
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def codes(verdict: dict[str, Any]) -> list[str]:
    return [r["code"] for r in verdict["reasons"]]


# -- random sequences of decisions -----------------------------------------------------------------

PAIRS = [
    ("marketing_email", ""),
    ("marketing_email", "email"),
    ("analytics", ""),
    ("personalization", ""),
    ("sale_or_share", ""),
    ("product_updates", ""),
    ("product_updates", "email"),
    ("product_updates", "push"),
    ("essential", ""),
]
REGIONS = ["EU", "US-CA", "US", "JP"]
SOURCES = ["api", "preference_center", "import", "unsubscribe_link"]
CUSTOMERS = 3

_decisions = st.lists(
    st.tuples(st.sampled_from(PAIRS), st.sampled_from(["granted", "denied", "withdrawn"])),
    min_size=1,
    max_size=3,
    unique_by=lambda d: d[0],
)
_customer = st.integers(0, CUSTOMERS - 1)
_step = st.one_of(
    st.tuples(st.just("record"), _customer, _decisions, st.booleans(), st.sampled_from(SOURCES)),
    st.tuples(st.just("record"), _customer, _decisions, st.booleans(), st.sampled_from(SOURCES)),
    st.tuples(st.just("gpc"), _customer),
    st.tuples(st.just("confirm"), st.integers(0, 1000)),
    st.tuples(st.just("region"), _customer, st.sampled_from(REGIONS)),
    st.tuples(st.just("switch"), _customer, st.sampled_from(["email", "push"]), st.booleans()),
    st.tuples(st.just("check"), _customer, st.sampled_from(PAIRS)),
)
_program = st.tuples(
    st.lists(st.sampled_from(REGIONS), min_size=CUSTOMERS, max_size=CUSTOMERS).map(
        lambda rs: ["US-CA", *rs[1:]]  # always one Californian, for GPC
    ),
    st.lists(_step, min_size=30, max_size=50),
)


@dataclass
class Model:
    """What the API has told us: every ledger record, in order, and who said what."""

    ext: list[str]
    sid: list[str]
    region: list[str]
    switches: list[dict[str, bool]]
    records: list[list[dict[str, Any]]] = field(default_factory=list)
    latest: list[dict[tuple[str, str], dict[str, Any]]] = field(default_factory=list)
    tokens: list[tuple[int, str, str, str]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def add(self, c: int, rec: dict[str, Any]) -> None:
        self.records[c].append(rec)
        self.latest[c][(rec["purpose"], rec["channel"])] = rec

    def states(self, c: int) -> dict[tuple[str, str], ConsentState]:
        return {
            key: ConsentState(
                rec["purpose"],
                rec["channel"],
                Decision(rec["decision"]),
                rec["legal_basis"],
                rec["notice_version"],
                rec["source"],
                datetime.fromisoformat(rec["recorded_at"]),
                datetime.fromisoformat(rec["expires_at"]) if rec["expires_at"] else None,
                uuid.UUID(rec["id"]),
            )
            for key, rec in self.latest[c].items()
        }


async def run_record(
    client: Client,
    m: Model,
    c: int,
    decisions: list[tuple[tuple[str, str], str]],
    gpc: bool,
    source: str,
) -> None:
    body = {
        "decisions": [{"purpose": p, "channel": ch, "decision": d} for (p, ch), d in decisions],
        "source": source,
    }
    r = await client.post(
        f"/v1/customers/{m.ext[c]}/consents", json=body, headers={"Sec-GPC": "1"} if gpc else {}
    )
    assert r.status_code == 201, r.text
    out = r.json()
    recs = out["records"]
    # the decisions asked for, in order; a grant that needs double opt-in becomes pending
    expected = [
        (p, ch, "pending" if d == "granted" and POLICY.purposes[p].double_opt_in else d)
        for (p, ch), d in decisions
    ]
    assert [(x["purpose"], x["channel"], x["decision"]) for x in recs[: len(expected)]] == expected
    assert all(x["source"] == source for x in recs[: len(expected)])
    for x in recs[: len(expected)]:
        m.add(c, x)
    # GPC: after the request's own decisions, an opt-out of sale/share where honoured
    if not gpc:
        assert out["gpc"] == "absent" and len(recs) == len(expected)
    elif not POLICY.region(m.region[c]).honor_gpc:
        assert out["gpc"] == "not_applicable" and len(recs) == len(expected)
    else:
        current = m.latest[c].get(("sale_or_share", ""))
        if current is not None and current["decision"] in ("withdrawn", "denied"):
            assert out["gpc"] == "already_opted_out" and len(recs) == len(expected)
        else:
            assert out["gpc"] == "applied"
            [extra] = recs[len(expected) :]
            assert (extra["purpose"], extra["channel"], extra["decision"], extra["source"]) == (
                "sale_or_share",
                "",
                "withdrawn",
                "gpc",
            )
            m.add(c, extra)
    pending = [x for x in recs if x["decision"] == "pending"]
    assert [(x["purpose"], x["channel"]) for x in out["confirmations"]] == [
        (x["purpose"], x["channel"]) for x in pending
    ]
    for conf in out["confirmations"]:
        m.tokens.append((c, conf["token"], conf["purpose"], conf["channel"]))


async def run_step(client: Client, core: Core, m: Model, step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "record":
        _, c, decisions, gpc, source = step
        await run_record(client, m, c, decisions, gpc, source)
    elif kind == "gpc":
        r = await client.post(
            f"/v1/customers/{m.ext[step[1]]}/consents",
            json={"decisions": []},
            headers={"Sec-GPC": "1"},
        )
        assert r.status_code == 201, r.text
        gpc_out = r.json()
        c = step[1]
        if not POLICY.region(m.region[c]).honor_gpc:
            assert gpc_out["gpc"] == "not_applicable" and gpc_out["records"] == []
        else:
            current = m.latest[c].get(("sale_or_share", ""))
            if current is not None and current["decision"] in ("withdrawn", "denied"):
                assert gpc_out["gpc"] == "already_opted_out" and gpc_out["records"] == []
            else:
                [rec] = gpc_out["records"]
                assert (rec["purpose"], rec["decision"], rec["source"]) == (
                    "sale_or_share",
                    "withdrawn",
                    "gpc",
                )
                m.add(c, rec)
    elif kind == "confirm":
        if not m.tokens:
            return
        c, token, purpose, channel = m.tokens[step[1] % len(m.tokens)]
        r = await client.post("/v1/confirmations", json={"token": token})
        if token in m.used:
            assert r.status_code == 410, r.text
            return
        current = m.latest[c].get((purpose, channel))
        if current is None or current["decision"] != "pending":  # decided otherwise since
            assert r.status_code == 410, r.text
            return
        assert r.status_code == 201, r.text
        rec = r.json()
        assert (rec["purpose"], rec["channel"], rec["decision"], rec["source"]) == (
            purpose,
            channel,
            "granted",
            "double_opt_in",
        )
        assert rec["actor"] == f"customer:{m.sid[c]}"
        m.used.add(token)
        m.add(c, rec)
    elif kind == "region":
        _, c, region = step
        r = await client.put(f"/v1/customers/{m.ext[c]}", json={"region": region})
        assert r.status_code == 200, r.text
        m.region[c] = region
    elif kind == "switch":
        _, c, channel, on = step
        r = await client.patch(
            f"/v1/customers/{m.ext[c]}/preferences", json={"channels": {channel: on}}
        )
        assert r.status_code == 200, r.text
        m.switches[c][channel] = on
    elif kind == "check":
        _, c, (purpose, channel) = step
        got = await check(client, m.ext[c], purpose, channel or None)
        want = evaluate(
            core.policy,
            region=m.region[c],
            purpose=purpose,
            channel=channel or None,
            states=m.states(c),
            preferences=Preferences(channels=dict(m.switches[c])),
            now=core.clock(),
        )
        assert (got["decision"] == "allow") is want.allowed, (got, want)
        assert codes(got) == want.codes
    else:
        raise AssertionError(kind)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(program=_program)
async def test_random_decisions_keep_ledger_and_state_in_step(
    client: Client, core: Core, program: tuple[list[str], list[tuple[Any, ...]]]
) -> None:
    """Random sequences of grants, refusals, withdrawals, GPC signals, confirmations, region and
    switch changes on fresh customers: the state table always equals a rebuild from the ledger,
    the ledger holds exactly the records the API reported, in order, and no old row changes."""
    await guard_append_only(core)
    regions, steps = program
    before = await ledger_rows(core)
    tag = uuid.uuid4().hex[:10]
    ext = [f"p-{tag}-{i}" for i in range(CUSTOMERS)]
    sid = [await create_customer(client, e, r) for e, r in zip(ext, regions, strict=True)]
    m = Model(ext, sid, list(regions), [{} for _ in ext], [[] for _ in ext], [{} for _ in ext])

    for step in steps:
        await run_step(client, core, m, step)

    assert await drift(core) == []
    after = await ledger_rows(core)
    assert_unchanged(before, after)
    for c in range(CUSTOMERS):
        mine = [r for r in after.values() if str(r["subject_id"]) == sid[c]]
        assert len(mine) == len(m.records[c])
        assert {str(r["id"]) for r in mine} == {x["id"] for x in m.records[c]}
        # the history is the reported records, in the order they were recorded
        r = await client.get(f"/v1/customers/{ext[c]}/consents/history", params={"limit": 500})
        assert [x["id"] for x in r.json()["items"]] == [x["id"] for x in m.records[c]]
        # the current state is the latest reported record per (purpose, channel)
        r = await client.get(f"/v1/customers/{ext[c]}/consents")
        state = {
            (x["purpose"], x["channel"]): (x["decision"], x["record_id"]) for x in r.json()["items"]
        }
        assert state == {k: (v["decision"], v["id"]) for k, v in m.latest[c].items()}
    assert len(after) - len(before) == sum(len(x) for x in m.records)


# -- append-only across every API path -------------------------------------------------------------


async def test_no_api_path_changes_old_ledger_rows(client: Client, core: Core) -> None:
    """Every kind of request that touches a customer leaves existing ledger rows as they were."""
    await guard_append_only(core)
    await create_customer(client, "a-1", "US-CA")
    first = await record(
        client,
        "a-1",
        {"purpose": "marketing_email", "decision": "granted"},
        {"purpose": "analytics", "decision": "granted"},
        {"purpose": "product_updates", "decision": "withdrawn", "channel": "push"},
    )
    token = first["confirmations"][0]["token"]
    snapshot = await ledger_rows(core)
    assert len(snapshot) == 3

    r = await client.post("/v1/customers/a-1/token", json={})
    me = {"Authorization": f"Bearer {r.json()['token']}"}
    calls = [
        lambda: client.put("/v1/customers/a-1", json={"region": "EU", "attributes": {"plan": "x"}}),
        lambda: client.put("/v1/customers/a-1", json={"region": "US-CA"}),
        lambda: client.post(
            "/v1/customers/a-1/consents",
            json={
                "decisions": [
                    {"purpose": "analytics", "decision": "withdrawn"},
                    {"purpose": "marketing_email", "decision": "denied", "channel": "email"},
                ]
            },
        ),
        lambda: client.post(
            "/v1/customers/a-1/consents", json={"decisions": []}, headers={"Sec-GPC": "1"}
        ),
        lambda: client.post("/v1/confirmations", json={"token": token}),
        lambda: client.post("/v1/confirmations", json={"token": token}),
        lambda: client.patch("/v1/customers/a-1/preferences", json={"channels": {"email": False}}),
        lambda: client.post("/v1/customers/a-1/events", json={"name": "x"}),
        lambda: client.get("/v1/customers/a-1"),
        lambda: client.get("/v1/customers/a-1/consents"),
        lambda: client.get("/v1/customers/a-1/consents/history"),
        lambda: client.get("/v1/customers/a-1/check", params={"purpose": "analytics"}),
        lambda: client.post(
            "/v1/me/consents",
            headers=me,
            json={"decisions": [{"purpose": "analytics", "decision": "granted"}]},
        ),
        lambda: client.patch("/v1/me/preferences", headers=me, json={"channels": {"sms": False}}),
        lambda: client.get("/v1/me/consents/history", headers=me),
        lambda: client.post(
            "/v1/customers/a-1/consents",
            json={
                "decisions": [
                    {"purpose": "analytics", "decision": "granted", "notice_version": "9"}
                ]
            },
        ),
    ]
    statuses = []
    for call in calls:
        r = await call()
        statuses.append(r.status_code)
        assert r.status_code < 500, r.text
        assert_unchanged(snapshot, await ledger_rows(core))
    assert statuses[5] == 410 and statuses[-1] == 422
    after = await ledger_rows(core)
    # analytics + marketing_email withdrawals, GPC, confirmation, the customer's grant
    assert len(after) == 3 + 2 + 1 + 1 + 1
    assert await drift(core) == []


async def test_append_only_guard_is_real(core: Core) -> None:
    """The trigger used above does reject an UPDATE of a ledger row (so the tests can fail)."""
    await guard_append_only(core)

    async def tamper(tx: Any) -> None:
        await tx.execute("UPDATE consent_records SET decision = 'granted'")
        await tx.execute(
            "INSERT INTO consent_records (id, subject_id, purpose, channel, decision, legal_basis,"
            " notice_version, notice_hash, language, policy_version, source, actor, recorded_at,"
            " evidence) VALUES (?, ?, 'analytics', '', 'denied', 'consent', '1', '', 'en', 'v',"
            " 'api', 'x', ?, '{}')",
            uuid.uuid4(),
            uuid.uuid4(),
            START,
        )
        await tx.execute("UPDATE consent_records SET decision = 'granted'")

    try:
        await core.writer.submit(tamper)
    except Exception as exc:
        assert "append-only" in str(exc)
    else:
        raise AssertionError("the append-only trigger let an UPDATE through")
    assert await ledger_rows(core) == {}


# -- double opt-in -------------------------------------------------------------------------------


async def test_double_opt_in(settings: Settings) -> None:
    """A marketing email grant records pending (check: pending); the token grants once (then 410);
    a token older than 72 hours is gone (410) and leaves the consent pending."""
    clock = FrozenClock(START)
    async with frozen_client(settings, clock) as (core, client):
        await create_customer(client, "d-1", "EU")
        out = await record(
            client, "d-1", {"purpose": "marketing_email", "decision": "granted", "channel": "email"}
        )
        [rec] = out["records"]
        assert (rec["decision"], rec["expires_at"]) == ("pending", None)
        [conf] = out["confirmations"]
        assert (conf["purpose"], conf["channel"]) == ("marketing_email", "email")
        assert datetime.fromisoformat(conf["expires_at"]) - START >= timedelta(hours=72)
        assert datetime.fromisoformat(conf["expires_at"]) - START < timedelta(hours=72, seconds=1)

        v = await check(client, "d-1", "marketing_email", "email")
        assert (v["decision"], codes(v)) == ("deny", ["pending"])

        clock.advance(hours=71, minutes=59)  # still inside the window
        r = await client.post("/v1/confirmations", json={"token": conf["token"]})
        assert r.status_code == 201, r.text
        granted = r.json()
        assert (granted["decision"], granted["source"], granted["channel"]) == (
            "granted",
            "double_opt_in",
            "email",
        )
        v = await check(client, "d-1", "marketing_email", "email")
        assert (v["decision"], codes(v)) == ("allow", ["granted"])

        r = await client.post("/v1/confirmations", json={"token": conf["token"]})
        assert r.status_code == 410, r.text

        r = await client.post("/v1/confirmations", json={"token": "not-a-real-token"})
        assert r.status_code == 404, r.text

        # a second customer lets the link expire
        await create_customer(client, "d-2", "EU")
        out = await record(client, "d-2", {"purpose": "marketing_email", "decision": "granted"})
        token = out["confirmations"][0]["token"]
        clock.advance(hours=72, seconds=1)
        r = await client.post("/v1/confirmations", json={"token": token})
        assert r.status_code == 410, r.text
        v = await check(client, "d-2", "marketing_email", "email")
        assert (v["decision"], codes(v)) == ("deny", ["pending"])
        rows = await core.db.fetch("SELECT decision FROM consent_records ORDER BY recorded_at")
        assert [r["decision"] for r in rows] == ["pending", "granted", "pending"]
        assert await drift(core) == []


async def test_confirmation_token_expires_exactly_at_72_hours(settings: Settings) -> None:
    """The link is gone from its expiry time on (72 h after it was issued)."""
    clock = FrozenClock(START)
    async with frozen_client(settings, clock) as (_, client):
        await create_customer(client, "d-3", "EU")
        out = await record(client, "d-3", {"purpose": "marketing_email", "decision": "granted"})
        conf = out["confirmations"][0]
        clock.now = datetime.fromisoformat(conf["expires_at"])
        r = await client.post("/v1/confirmations", json={"token": conf["token"]})
        assert r.status_code == 410, r.text


# -- Global Privacy Control ------------------------------------------------------------------------


async def test_gpc_for_a_californian(client: Client, core: Core) -> None:
    """Sec-GPC: 1 for a US-CA customer records a withdrawn sale_or_share (source gpc), after which
    the check denies; a second signal records nothing more."""
    await create_customer(client, "g-ca", "US-CA")
    v = await check(client, "g-ca", "sale_or_share")
    assert (v["decision"], codes(v)) == ("allow", ["region_default_allow"])

    out = await record(client, "g-ca", gpc=True)
    assert out["gpc"] == "applied"
    [rec] = out["records"]
    assert (rec["purpose"], rec["channel"], rec["decision"], rec["source"]) == (
        "sale_or_share",
        "",
        "withdrawn",
        "gpc",
    )
    v = await check(client, "g-ca", "sale_or_share")
    assert (v["decision"], codes(v)) == ("deny", ["withdrawn"])

    again = await record(client, "g-ca", gpc=True)
    assert (again["gpc"], again["records"]) == ("already_opted_out", [])

    # alongside decisions: they are recorded, and the signal still wins for sale/share
    out = await record(
        client,
        "g-ca",
        {"purpose": "sale_or_share", "decision": "granted"},
        {"purpose": "analytics", "decision": "granted"},
        gpc=True,
    )
    assert out["gpc"] == "applied"
    assert [(x["purpose"], x["decision"], x["source"]) for x in out["records"]] == [
        ("sale_or_share", "granted", "api"),
        ("analytics", "granted", "api"),
        ("sale_or_share", "withdrawn", "gpc"),
    ]
    v = await check(client, "g-ca", "sale_or_share")
    assert (v["decision"], codes(v)) == ("deny", ["withdrawn"])
    rows = await core.db.fetch("SELECT source FROM consent_records WHERE purpose = 'sale_or_share'")
    assert sorted(r["source"] for r in rows) == ["api", "gpc", "gpc"]
    assert await drift(core) == []


async def test_gpc_for_an_eu_customer_is_not_applicable(client: Client, core: Core) -> None:
    """For an EU customer Sec-GPC records nothing and answers gpc="not_applicable"."""
    await create_customer(client, "g-eu", "EU")
    out = await record(client, "g-eu", gpc=True)
    assert (out["gpc"], out["records"]) == ("not_applicable", [])
    out = await record(client, "g-eu", {"purpose": "analytics", "decision": "granted"}, gpc=True)
    assert out["gpc"] == "not_applicable"
    assert [(x["purpose"], x["source"]) for x in out["records"]] == [("analytics", "api")]
    rows = await core.db.fetch("SELECT purpose FROM consent_records")
    assert [r["purpose"] for r in rows] == ["analytics"]
    v = await check(client, "g-eu", "sale_or_share")
    assert (v["decision"], codes(v)) == ("deny", ["region_default_deny"])
    # without the header, nothing about GPC is claimed
    out = await record(client, "g-eu", {"purpose": "analytics", "decision": "denied"})
    assert out["gpc"] == "absent"


# -- expiry ----------------------------------------------------------------------------------------


async def test_marketing_email_grant_expires_after_730_days(settings: Settings) -> None:
    """A confirmed marketing email grant allows for 730 days, then the check says expired;
    analytics (no expiry in the policy) stays granted."""
    clock = FrozenClock(START)
    async with frozen_client(settings, clock) as (core, client):
        await create_customer(client, "e-1", "EU")
        out = await record(
            client,
            "e-1",
            {"purpose": "marketing_email", "decision": "granted"},
            {"purpose": "analytics", "decision": "granted"},
        )
        r = await client.post("/v1/confirmations", json={"token": out["confirmations"][0]["token"]})
        assert r.status_code == 201, r.text
        granted = r.json()
        expires = datetime.fromisoformat(granted["expires_at"])
        recorded = datetime.fromisoformat(granted["recorded_at"])
        assert expires - recorded == timedelta(days=730)
        assert out["records"][1]["expires_at"] is None  # analytics never lapses

        clock.advance(days=729, hours=23)
        v = await check(client, "e-1", "marketing_email", "email")
        assert (v["decision"], codes(v)) == ("allow", ["granted"])

        clock.now = expires
        v = await check(client, "e-1", "marketing_email", "email")
        assert (v["decision"], codes(v)) == ("deny", ["expired"])
        clock.advance(days=1)
        v = await check(client, "e-1", "marketing_email")
        assert (v["decision"], codes(v)) == ("deny", ["expired"])
        v = await check(client, "e-1", "analytics")
        assert (v["decision"], codes(v)) == ("allow", ["granted"])

        # renewing is a new grant (pending, then confirmed) with a new two-year term
        out = await record(client, "e-1", {"purpose": "marketing_email", "decision": "granted"})
        r = await client.post("/v1/confirmations", json={"token": out["confirmations"][0]["token"]})
        assert r.status_code == 201, r.text
        v = await check(client, "e-1", "marketing_email", "email")
        assert (v["decision"], codes(v)) == ("allow", ["granted"])
        assert await drift(core) == []
