"""The effective decision: may this customer's data be used for purpose P (on channel C)?

Pure: policy, the customer's region, current consent state and preferences in; `allow` or `deny`
with the chain of reasons out. Fails closed: anything unknown is a deny with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.consent import ConsentState, Decision, Preferences
from consentry.domain.purposes import LegalBasis, Policy, Purpose, Region


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    purpose: str
    channel: str | None
    legal_basis: str | None
    reasons: tuple[Reason, ...]

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]


States = Mapping[tuple[str, str], ConsentState]
NO_PREFERENCES = Preferences()


def _allow(purpose: str, channel: str | None, basis: str | None, reason: Reason) -> Verdict:
    return Verdict(True, purpose, channel, basis, (reason,))


def _deny(purpose: str, channel: str | None, basis: str | None, *reasons: Reason) -> Verdict:
    return Verdict(False, purpose, channel, basis, reasons)


def evaluate(
    policy: Policy,
    *,
    region: str | None,
    purpose: str,
    channel: str | None = None,
    topic: str | None = None,
    states: States,
    preferences: Preferences = NO_PREFERENCES,
    now: datetime,
) -> Verdict:
    spec = policy.purposes.get(purpose)
    if spec is None:
        return _deny(
            purpose,
            channel,
            None,
            Reason("unknown_purpose", f"denied: purpose '{purpose}' is not in the policy"),
        )
    basis = spec.legal_basis.value
    scope = _check_scope(policy, spec, channel, topic)
    if scope is not None:
        return _deny(purpose, channel, basis, scope)
    if not spec.legal_basis.objectable:
        return _allow(
            purpose,
            channel,
            basis,
            Reason(
                "legal_basis",
                f"allowed: legal basis '{basis}' under policy; consent is not required",
            ),
        )
    override = _preference_override(preferences, channel, topic)
    if override is not None:
        return _deny(purpose, channel, basis, override)
    state = latest_state(states, purpose, channel)
    if state is None:
        return _without_record(policy, spec, region, channel)
    return _from_record(spec, state, channel, now)


def _check_scope(
    policy: Policy, spec: Purpose, channel: str | None, topic: str | None
) -> Reason | None:
    if channel is not None:
        if channel not in policy.channels:
            return Reason("unknown_channel", f"denied: channel '{channel}' is not in the policy")
        if channel not in spec.channels:
            return Reason(
                "channel_not_allowed",
                f"denied: purpose '{spec.name}' may not use channel '{channel}'",
            )
    if topic is not None:
        known = policy.topics.get(topic)
        if known is None or known.purpose != spec.name:
            return Reason(
                "unknown_topic", f"denied: topic '{topic}' is not a topic of purpose '{spec.name}'"
            )
    return None


def _preference_override(
    prefs: Preferences, channel: str | None, topic: str | None
) -> Reason | None:
    if channel is not None and prefs.channels.get(channel) is False:
        also = (
            f" and overrides the opt-in to topic '{topic}'"
            if topic and prefs.topics.get(topic)
            else ""
        )
        return Reason(
            "channel_off",
            f"denied: the customer switched {channel} off globally;"
            f" this overrides consent for the purpose{also}",
        )
    if topic is not None and prefs.topics.get(topic) is False:
        return Reason("topic_off", f"denied: the customer opted out of topic '{topic}'")
    return None


def latest_state(states: States, purpose: str, channel: str | None) -> ConsentState | None:
    """The most recent record that covers the question.

    On a channel: that channel's record or the purpose-wide one. With no channel (the purpose as
    a whole): any record of the purpose, so a withdrawal on its only channel is not ignored.
    """
    if channel:
        keys = [(purpose, ""), (purpose, channel)]
        candidates = [states[k] for k in keys if k in states]
    else:
        candidates = [s for (p, _), s in states.items() if p == purpose]
    return max(candidates, key=lambda s: s.recorded_at) if candidates else None


def _without_record(
    policy: Policy, spec: Purpose, region_code: str | None, channel: str | None
) -> Verdict:
    basis = spec.legal_basis.value
    if spec.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        return _allow(
            spec.name,
            channel,
            basis,
            Reason(
                "legitimate_interest",
                "allowed: legitimate interest under policy, no objection recorded",
            ),
        )
    region = _region(policy, region_code)
    if region is None:
        return _deny(
            spec.name,
            channel,
            basis,
            Reason("region_default_deny", f"denied: region '{region_code}' is not in the policy"),
        )
    default = spec.region_defaults.get(region.code, region.model.value == "opt_out")
    if default:
        return _allow(
            spec.name,
            channel,
            basis,
            Reason(
                "region_default_allow",
                f"allowed: no decision recorded; {region.code} ({region.regulation})"
                " is opt-out for this purpose",
            ),
        )
    return _deny(
        spec.name,
        channel,
        basis,
        Reason(
            "region_default_deny",
            f"denied: no consent recorded; {region.code} ({region.regulation}) requires opt-in",
        ),
    )


def _region(policy: Policy, code: str | None) -> Region | None:
    return policy.regions.get(code or policy.default_region)


def _from_record(spec: Purpose, state: ConsentState, channel: str | None, now: datetime) -> Verdict:
    basis = spec.legal_basis.value
    when = f"{state.recorded_at.date().isoformat()} via {state.source}"
    if state.decision is Decision.PENDING:
        return _deny(
            spec.name,
            channel,
            basis,
            Reason("pending", f"denied: double opt-in pending since {when}; awaiting confirmation"),
        )
    if state.decision is Decision.WITHDRAWN:
        return _deny(spec.name, channel, basis, Reason("withdrawn", f"denied: withdrawn on {when}"))
    if state.decision is Decision.DENIED:
        return _deny(spec.name, channel, basis, Reason("denied", f"denied: refused on {when}"))
    if state.expires_at is not None and state.expires_at <= now:
        return _deny(
            spec.name,
            channel,
            basis,
            Reason(
                "expired",
                f"denied: consent granted on {when} expired on"
                f" {state.expires_at.date().isoformat()}",
            ),
        )
    current = spec.current_notice.version
    if spec.reconsent_on_notice_change and state.notice_version != current:
        return _deny(
            spec.name,
            channel,
            basis,
            Reason(
                "notice_outdated",
                f"denied: granted under notice {state.notice_version or '(none)'},"
                f" the current notice is {current}; consent must be asked again",
            ),
        )
    return _allow(
        spec.name,
        channel,
        basis,
        Reason(
            "granted",
            f"allowed: granted on {when} under notice {state.notice_version or '(none)'}",
        ),
    )


def evaluate_capability(
    policy: Policy,
    capability: str,
    *,
    region: str | None,
    channel: str | None = None,
    states: States,
    preferences: Preferences = NO_PREFERENCES,
    now: datetime,
) -> list[Verdict]:
    """Every purpose a gated capability needs; the capability runs only if all allow."""
    purposes = policy.gates.get(capability)
    if not purposes:
        return [
            _deny(
                "",
                channel,
                None,
                Reason(
                    "unknown_capability",
                    f"denied: capability '{capability}' has no gate in the policy",
                ),
            )
        ]
    return [
        evaluate(
            policy,
            region=region,
            purpose=p,
            channel=channel if channel in policy.purposes[p].channels else None,
            states=states,
            preferences=preferences,
            now=now,
        )
        for p in purposes
    ]
