"""The effective decision against the default policy: every reason code, combinations, and
failing closed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.domain.consent import ConsentState, Decision, Preferences
from consentry.domain.decision import Verdict, evaluate, evaluate_capability
from consentry.domain.purposes import ConsentModel, LegalBasis, Policy
from consentry.policy.loader import load_policy

ROOT = Path(__file__).resolve().parents[2]
POLICY: Policy = load_policy(ROOT / "policies" / "default.yaml")
NOW = datetime(2026, 1, 10, 9, 30, tzinfo=UTC)

ALL_CODES = {
    "unknown_purpose",
    "unknown_channel",
    "channel_not_allowed",
    "unknown_topic",
    "channel_off",
    "topic_off",
    "legal_basis",
    "granted",
    "denied",
    "withdrawn",
    "expired",
    "pending",
    "notice_outdated",
    "region_default_allow",
    "region_default_deny",
    "legitimate_interest",
    "unknown_capability",
}


def state(
    purpose: str,
    decision: str,
    *,
    channel: str = "",
    notice: str | None = None,
    days_ago: float = 10,
    expires_in_days: float | None = None,
) -> ConsentState:
    spec = POLICY.purposes[purpose]
    recorded = NOW - timedelta(days=days_ago)
    return ConsentState(
        purpose=purpose,
        channel=channel,
        decision=Decision(decision),
        legal_basis=spec.legal_basis.value,
        notice_version=notice or spec.current_notice.version,
        source="api",
        recorded_at=recorded,
        expires_at=None if expires_in_days is None else NOW + timedelta(days=expires_in_days),
        record_id=uuid.uuid4(),
    )


@dataclass
class Case:
    name: str
    purpose: str
    allowed: bool
    code: str
    region: str | None = "EU"
    channel: str | None = None
    topic: str | None = None
    records: list[ConsentState] = field(default_factory=list)
    prefs: Preferences = field(default_factory=Preferences)
    capability: str | None = None


CASES = [
    Case("unknown purpose", "telepathy", False, "unknown_purpose"),
    Case(
        "unknown channel",
        "marketing_email",
        False,
        "unknown_channel",
        channel="pigeon",
        records=[state("marketing_email", "granted", expires_in_days=100)],
    ),
    Case(
        "channel the purpose may not use",
        "marketing_email",
        False,
        "channel_not_allowed",
        channel="sms",
        records=[state("marketing_email", "granted", expires_in_days=100)],
    ),
    Case(
        "a purpose without channels may use none",
        "analytics",
        False,
        "channel_not_allowed",
        channel="email",
        records=[state("analytics", "granted")],
    ),
    Case(
        "unknown topic",
        "marketing_email",
        False,
        "unknown_topic",
        channel="email",
        topic="horoscopes",
        records=[state("marketing_email", "granted", expires_in_days=100)],
    ),
    Case(
        "topic of another purpose",
        "marketing_email",
        False,
        "unknown_topic",
        channel="email",
        topic="release_notes",
        records=[state("marketing_email", "granted", expires_in_days=1)],
    ),
    Case(
        "channel switched off beats consent",
        "marketing_email",
        False,
        "channel_off",
        channel="email",
        records=[state("marketing_email", "granted", expires_in_days=100)],
        prefs=Preferences(channels={"email": False}),
    ),
    Case(
        "channel switched off beats legitimate interest",
        "product_updates",
        False,
        "channel_off",
        channel="email",
        prefs=Preferences(channels={"email": False}),
    ),
    Case(
        "topic switched off",
        "marketing_email",
        False,
        "topic_off",
        channel="email",
        topic="newsletter",
        records=[state("marketing_email", "granted", expires_in_days=100)],
        prefs=Preferences(topics={"newsletter": False, "offers": True}),
    ),
    Case(
        "contract basis ignores switches and records",
        "essential",
        True,
        "legal_basis",
        channel="email",
        records=[state("essential", "withdrawn")],
        prefs=Preferences(channels={"email": False}),
    ),
    Case(
        "granted under the current notice",
        "marketing_email",
        True,
        "granted",
        channel="email",
        records=[state("marketing_email", "granted", expires_in_days=100)],
    ),
    Case(
        "granted, topic switched on",
        "marketing_email",
        True,
        "granted",
        channel="email",
        topic="offers",
        records=[state("marketing_email", "granted", expires_in_days=100)],
        prefs=Preferences(topics={"offers": True}),
    ),
    Case(
        "granted analytics (JP)",
        "analytics",
        True,
        "granted",
        region="JP",
        records=[state("analytics", "granted")],
    ),
    Case("refused", "analytics", False, "denied", records=[state("analytics", "denied")]),
    Case(
        "refused in an opt-out region",
        "sale_or_share",
        False,
        "denied",
        region="US-CA",
        records=[state("sale_or_share", "denied")],
    ),
    Case(
        "withdrawn",
        "marketing_email",
        False,
        "withdrawn",
        channel="email",
        records=[state("marketing_email", "withdrawn")],
    ),
    Case(
        "objection to legitimate interest",
        "product_updates",
        False,
        "withdrawn",
        channel="push",
        records=[state("product_updates", "withdrawn")],
    ),
    Case(
        "expired a second ago",
        "marketing_email",
        False,
        "expired",
        channel="email",
        records=[state("marketing_email", "granted", expires_in_days=-1 / 86400)],
    ),
    Case(
        "expires exactly now",
        "marketing_email",
        False,
        "expired",
        channel="email",
        records=[state("marketing_email", "granted", expires_in_days=0)],
    ),
    Case(
        "pending double opt-in",
        "marketing_email",
        False,
        "pending",
        channel="email",
        records=[state("marketing_email", "pending")],
    ),
    Case(
        "granted under an older notice",
        "marketing_email",
        False,
        "notice_outdated",
        channel="email",
        records=[state("marketing_email", "granted", notice="1", expires_in_days=100)],
    ),
    Case(
        "opt-out region, nothing recorded, region default",
        "sale_or_share",
        True,
        "region_default_allow",
        region="US-CA",
    ),
    Case("opt-out model, nothing recorded", "analytics", True, "region_default_allow", region="US"),
    Case(
        "opt-in region, nothing recorded",
        "marketing_email",
        False,
        "region_default_deny",
        channel="email",
    ),
    Case("sale_or_share has no EU default", "sale_or_share", False, "region_default_deny"),
    Case(
        "no region: the default region (OTHER, opt-in)",
        "analytics",
        False,
        "region_default_deny",
        region=None,
    ),
    Case(
        "region missing from the policy",
        "sale_or_share",
        False,
        "region_default_deny",
        region="ATLANTIS",
    ),
    Case(
        "legitimate interest, nothing recorded",
        "product_updates",
        True,
        "legitimate_interest",
        channel="in_app",
    ),
    Case(
        "legitimate interest in an unknown region",
        "product_updates",
        True,
        "legitimate_interest",
        region="ATLANTIS",
    ),
    Case("unknown capability", "", False, "unknown_capability", capability="mind.reading"),
    Case(
        "gated capability, consent given",
        "marketing_email",
        True,
        "granted",
        capability="segments.membership",
        records=[state("marketing_email", "granted", expires_in_days=100)],
    ),
    Case(
        "gated capability, nothing recorded",
        "analytics",
        False,
        "region_default_deny",
        capability="analytics.track",
    ),
]


def run(case: Case) -> Verdict:
    states = {s.key: s for s in case.records}
    if case.capability is not None:
        verdicts = evaluate_capability(
            POLICY,
            case.capability,
            region=case.region,
            channel=case.channel,
            states=states,
            preferences=case.prefs,
            now=NOW,
        )
        assert len(verdicts) == 1
        return verdicts[0]
    return evaluate(
        POLICY,
        region=case.region,
        purpose=case.purpose,
        channel=case.channel,
        topic=case.topic,
        states=states,
        preferences=case.prefs,
        now=NOW,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision_table(case: Case) -> None:
    """Each case gets its decision with exactly one reason carrying the expected code."""
    verdict = run(case)
    assert verdict.allowed is case.allowed
    assert verdict.codes == [case.code]
    assert verdict.reasons[0].message.startswith("allowed" if case.allowed else "denied")
    if case.capability is None:
        assert verdict.purpose == case.purpose
        assert verdict.channel == case.channel


def test_the_table_covers_every_reason_code() -> None:
    """The table reaches every reason code evaluate and evaluate_capability can give."""
    import inspect
    import re

    import consentry.domain.decision as decision_module

    source = inspect.getsource(decision_module)
    in_source = set(re.findall(r'Reason\(\s*"([a-z_]+)"', source))
    assert in_source == ALL_CODES
    assert {c.code for c in CASES} == ALL_CODES


def test_every_gate_names_known_purposes() -> None:
    """A gate only lists purposes the policy has, so evaluate_capability never KeyErrors."""
    for capability, purposes in POLICY.gates.items():
        assert purposes, capability
        for p in purposes:
            assert p in POLICY.purposes, (capability, p)


# -- purpose-wide and channel-specific records combine by most recent ---------------------------


def _two(
    general: str,
    general_days_ago: float,
    specific: str,
    specific_days_ago: float,
    region: str = "EU",
) -> Verdict:
    records = [
        state("marketing_email", general, days_ago=general_days_ago, expires_in_days=100),
        state(
            "marketing_email",
            specific,
            channel="email",
            days_ago=specific_days_ago,
            expires_in_days=100,
        ),
    ]
    # expiry is only set on grants in practice; here it is harmless on other decisions
    return evaluate(
        POLICY,
        region=region,
        purpose="marketing_email",
        channel="email",
        states={s.key: s for s in records},
        now=NOW,
    )


def test_later_channel_withdrawal_beats_earlier_purpose_grant() -> None:
    """A purpose-wide grant followed by an email withdrawal denies email."""
    v = _two("granted", 20, "withdrawn", 5)
    assert not v.allowed and v.codes == ["withdrawn"]


def test_later_purpose_grant_beats_earlier_channel_withdrawal() -> None:
    """An email withdrawal followed by a purpose-wide grant allows email again."""
    v = _two("granted", 5, "withdrawn", 20)
    assert v.allowed and v.codes == ["granted"]


def test_later_channel_grant_beats_earlier_purpose_refusal() -> None:
    """A purpose-wide refusal followed by an email grant allows email."""
    v = _two("denied", 20, "granted", 5)
    assert v.allowed and v.codes == ["granted"]


def test_later_purpose_withdrawal_beats_earlier_channel_grant() -> None:
    """An email grant followed by a purpose-wide withdrawal denies email."""
    v = _two("withdrawn", 5, "granted", 20)
    assert not v.allowed and v.codes == ["withdrawn"]


def test_a_record_for_another_channel_does_not_count() -> None:
    """A grant recorded for one channel does not cover another channel of the purpose."""
    records = [state("product_updates", "withdrawn", channel="push")]
    v = evaluate(
        POLICY,
        region="EU",
        purpose="product_updates",
        channel="email",
        states={s.key: s for s in records},
        now=NOW,
    )
    assert v.allowed and v.codes == ["legitimate_interest"]
    v = evaluate(
        POLICY,
        region="EU",
        purpose="product_updates",
        channel="push",
        states={s.key: s for s in records},
        now=NOW,
    )
    assert not v.allowed and v.codes == ["withdrawn"]


def test_without_a_channel_any_record_of_the_purpose_counts() -> None:
    """Asked about the purpose as a whole, a withdrawal on its only channel is not ignored."""
    records = [state("marketing_email", "withdrawn", channel="email")]
    v = evaluate(
        POLICY, region="US", purpose="marketing_email", states={s.key: s for s in records}, now=NOW
    )
    assert not v.allowed and v.codes == ["withdrawn"]
    verdicts = evaluate_capability(
        POLICY, "segments.membership", region="US", states={s.key: s for s in records}, now=NOW
    )
    assert not all(x.allowed for x in verdicts)


# -- properties ----------------------------------------------------------------------------------

OPT_IN_REGIONS = [code for code, r in POLICY.regions.items() if r.model is ConsentModel.OPT_IN]
CONSENT_PURPOSES = [p for p, s in POLICY.purposes.items() if s.legal_basis is LegalBasis.CONSENT]


def test_the_default_policy_has_what_the_properties_need() -> None:
    """The properties below are not vacuous: opt-in regions and consent purposes exist."""
    assert {"EU", "UK", "JP", "OTHER"} <= set(OPT_IN_REGIONS)
    assert POLICY.regions[POLICY.default_region].model is ConsentModel.OPT_IN
    assert {"marketing_email", "analytics", "personalization", "sale_or_share"} <= set(
        CONSENT_PURPOSES
    )


@st.composite
def _question(draw: st.DrawFn) -> tuple[str, str | None, str | None]:
    purpose = draw(st.sampled_from(CONSENT_PURPOSES))
    channel = draw(st.one_of(st.none(), st.sampled_from(list(POLICY.channels))))
    topics = [t for t, v in POLICY.topics.items() if v.purpose == purpose]
    topic = draw(st.one_of(st.none(), st.sampled_from(topics))) if topics else None
    return purpose, channel, topic


_prefs = st.builds(
    Preferences,
    channels=st.dictionaries(st.sampled_from(list(POLICY.channels)), st.booleans()),
    topics=st.dictionaries(st.sampled_from(list(POLICY.topics)), st.booleans()),
)
_region = st.one_of(
    st.sampled_from(OPT_IN_REGIONS),
    st.none(),
    st.text(max_size=8).filter(lambda r: r not in POLICY.regions),
)
_now = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=400, deadline=None)
@given(_question(), _region, _prefs, _now)
def test_no_records_in_an_opt_in_region_never_allows_consent_purposes(
    question: tuple[str, str | None, str | None],
    region: str | None,
    prefs: Preferences,
    now: datetime,
) -> None:
    """With no consent records, an opt-in (or unknown) region never allows a consent purpose."""
    purpose, channel, topic = question
    v = evaluate(
        POLICY,
        region=region,
        purpose=purpose,
        channel=channel,
        topic=topic,
        states={},
        preferences=prefs,
        now=now,
    )
    assert not v.allowed
    assert v.reasons and all(r.message.startswith("denied") for r in v.reasons)


@settings(max_examples=200, deadline=None)
@given(_question(), _region, _now)
def test_no_records_no_capability_needing_consent_runs(
    question: tuple[str, str | None, str | None], region: str | None, now: datetime
) -> None:
    """No gate whose purposes include a consent purpose opens without records in opt-in regions."""
    _, channel, _ = question
    for capability, purposes in POLICY.gates.items():
        verdicts = evaluate_capability(
            POLICY, capability, region=region, channel=channel, states={}, now=now
        )
        if any(p in CONSENT_PURPOSES for p in purposes):
            assert not all(v.allowed for v in verdicts), capability


_grant_everything = {(p, ""): state(p, "granted", expires_in_days=10_000) for p in POLICY.purposes}


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=40).filter(lambda p: p not in POLICY.purposes),
    st.one_of(st.none(), st.sampled_from(list(POLICY.channels))),
    st.sampled_from([*POLICY.regions, None]),
)
def test_unknown_purpose_is_always_denied(
    purpose: str, channel: str | None, region: str | None
) -> None:
    """Any purpose string not in the policy is denied (unknown_purpose), whatever is recorded."""
    states = dict(_grant_everything)
    states[(purpose, "")] = ConsentState(
        purpose,
        "",
        Decision.GRANTED,
        "consent",
        "1",
        "api",
        NOW - timedelta(days=1),
        None,
        uuid.uuid4(),
    )
    v = evaluate(
        POLICY,
        region=region,
        purpose=purpose,
        channel=channel,
        states=states,
        preferences=Preferences(channels={c: True for c in POLICY.channels}),
        now=NOW,
    )
    assert not v.allowed
    assert v.codes == ["unknown_purpose"]
    assert v.legal_basis is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40).filter(lambda c: c not in POLICY.gates))
def test_unknown_capability_is_always_denied(capability: str) -> None:
    """Any capability without a gate is denied (unknown_capability), even with every grant."""
    verdicts = evaluate_capability(
        POLICY, capability, region="US", states=_grant_everything, now=NOW
    )
    assert [v.allowed for v in verdicts] == [False]
    assert verdicts[0].codes == ["unknown_capability"]
