"""Running a policy test case through the same decision logic the service uses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from consentry.domain.consent import ConsentState, Decision, Preferences
from consentry.domain.decision import evaluate, evaluate_capability
from consentry.domain.purposes import Policy
from consentry.policy.cases import CaseConsent, PolicyCase

CASE_TIME = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _state(policy: Policy, c: CaseConsent, at: datetime) -> ConsentState:
    spec = policy.purposes[c.purpose]
    days = c.expires_in_days if c.expires_in_days is not None else spec.expires_after_days
    return ConsentState(
        purpose=c.purpose,
        channel=c.channel or "",
        decision=Decision(c.decision),
        legal_basis=spec.legal_basis.value,
        notice_version=c.notice_version or spec.current_notice.version,
        source="api",
        recorded_at=at,
        expires_at=CASE_TIME + timedelta(days=days) if days is not None else None,
        record_id=uuid.uuid4(),
    )


def evaluate_case(policy: Policy, case: PolicyCase) -> tuple[bool, list[str]]:
    """Consents are recorded one second apart, in the order the case lists them."""
    states = {}
    for i, c in enumerate(case.consents):
        state = _state(policy, c, CASE_TIME - timedelta(days=1) + timedelta(seconds=i))
        states[state.key] = state
    prefs = Preferences(
        channels=dict(case.preferences.channels), topics=dict(case.preferences.topics)
    )
    check = case.check
    if check.capability:
        verdicts = evaluate_capability(
            policy,
            check.capability,
            region=case.region,
            channel=check.channel,
            states=states,
            preferences=prefs,
            now=CASE_TIME,
        )
        return all(v.allowed for v in verdicts), [code for v in verdicts for code in v.codes]
    purpose = check.purpose
    if purpose is None and check.topic:
        topic = policy.topics.get(check.topic)
        purpose = topic.purpose if topic else ""
    verdict = evaluate(
        policy,
        region=case.region,
        purpose=purpose or "",
        channel=check.channel,
        topic=check.topic,
        states=states,
        preferences=prefs,
        now=CASE_TIME,
    )
    return verdict.allowed, verdict.codes
