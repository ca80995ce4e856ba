"""Policy test cases: `policies/tests/*.yaml`, the backend of `consentry policy test`.

A case file is a list of cases; each sets up a subject (region, consent records, preferences),
asks one question (a purpose, or a plugin capability, optionally on a channel or topic) and states
the expected answer:

    - name: EU, no record -> deny
      region: EU
      consents: [{purpose: marketing_email, decision: granted, notice_version: "2"}]
      preferences: {channels: {email: false}, topics: {newsletter: true}}
      check: {purpose: marketing_email, channel: email}
      expect: deny
      reason: channel_off        # optional: a substring of one of the reason codes returned

This module parses and runs cases; the decision itself comes from an `Evaluator` passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from consentry.domain.purposes import Policy
from consentry.policy._checker import Checker, listing
from consentry.policy._nodes import PolicyError, PolicyIssue, YNode, child, parse_yaml

__all__ = [
    "DECISIONS",
    "REASON_CODES",
    "CaseCheck",
    "CaseConsent",
    "CasePreferences",
    "CaseResult",
    "Evaluator",
    "PolicyCase",
    "format_results",
    "lint_cases",
    "load_case_file",
    "load_cases",
    "parse_cases",
    "run_cases",
]

DECISIONS = ("granted", "denied", "withdrawn", "pending")
EXPECTATIONS = {"allow": True, "deny": False}
REASON_CODES = (
    "unknown_purpose", "unknown_channel", "channel_not_allowed", "unknown_topic", "channel_off",
    "topic_off", "legal_basis", "granted", "denied", "withdrawn", "expired", "pending",
    "notice_outdated", "region_default_allow", "region_default_deny", "legitimate_interest",
    "unknown_capability",
)  # fmt: skip
CASE_REQUIRED = ("name", "check", "expect")
CASE_OPTIONAL = ("region", "consents", "preferences", "reason")
CONSENT_OPTIONAL = ("channel", "notice_version", "expires_in_days")
CHECK_KEYS = ("purpose", "capability", "channel", "topic")


@dataclass(frozen=True, slots=True)
class CaseConsent:
    """One consent record in the subject's ledger before the check."""

    purpose: str
    decision: str  # one of DECISIONS
    channel: str | None = None
    notice_version: str | None = None  # None: the purpose's current notice
    expires_in_days: int | None = None  # negative: already expired; None: the purpose's default
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class CasePreferences:
    channels: dict[str, bool] = field(default_factory=dict)  # channel -> on/off
    topics: dict[str, bool] = field(default_factory=dict)  # topic -> subscribed


@dataclass(frozen=True, slots=True)
class CaseCheck:
    """The question: a purpose or a capability (not both), or just a topic; maybe on a channel."""

    purpose: str | None = None
    capability: str | None = None
    channel: str | None = None
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyCase:
    name: str
    file: str
    line: int
    region: str | None  # None: the policy's default region
    consents: tuple[CaseConsent, ...]
    preferences: CasePreferences
    check: CaseCheck
    expect_allowed: bool
    reason: str | None  # a substring one of the returned reason codes must contain


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: PolicyCase
    passed: bool
    got_allowed: bool
    got_reasons: tuple[str, ...]
    message: str


Evaluator = Callable[[Policy, PolicyCase], tuple[bool, list[str]]]
"""(policy, case) -> (allowed, reason codes): the policy evaluation under test."""


def load_cases(path: Path) -> list[PolicyCase]:
    """Cases of one file, or of every `*.yaml` in a directory; one `PolicyError` for all files."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    cases: list[PolicyCase] = []
    issues: list[PolicyIssue] = []
    for file in files:
        try:
            cases.extend(load_case_file(file))
        except PolicyError as error:
            issues.extend(error.issues)
    if issues:
        raise PolicyError(issues)
    return cases


def load_case_file(path: Path) -> list[PolicyCase]:
    try:
        data = path.read_bytes()
    except OSError as error:
        issue = PolicyIssue(str(path), 1, "", f"cannot read the file: {error.strerror or error}")
        raise PolicyError([issue]) from error
    return parse_cases(data, str(path))


def parse_cases(data: bytes, file: str = "<cases>") -> list[PolicyCase]:
    """Parse a case file given as bytes; raise `PolicyError` listing every problem."""
    root, issues = parse_yaml(data, file)
    ck = Checker(file, issues)
    found = ck.sequence(root, "")
    if found is not None and not found.items:
        ck.error(found.line, "", "the file has no cases")
    cases: list[PolicyCase] = []
    names: dict[str, int] = {}
    for i, item in enumerate(found.items if found else ()):
        case = _case(ck, item, child("", i))
        if case is not None and case.name in names:
            ck.error(
                case.line, child("", i), f"duplicate case name (first on line {names[case.name]})"
            )
        elif case is not None:
            names[case.name] = case.line
            cases.append(case)
    if ck.issues:
        raise PolicyError(ck.issues)
    return cases


def _case(ck: Checker, node: YNode, path: str) -> PolicyCase | None:
    f = ck.fields(node, path, CASE_REQUIRED, CASE_OPTIONAL)
    if f is None:
        return None
    name = ck.string(f.get("name"), child(path, "name"))
    region = ck.string(f.get("region"), child(path, "region"))
    consents = _consents(ck, f.get("consents"), child(path, "consents"))
    preferences = _preferences(ck, f.get("preferences"), child(path, "preferences"))
    check = _check(ck, f.get("check"), child(path, "check"))
    expect = ck.choice(f.get("expect"), child(path, "expect"), EXPECTATIONS, "expectation")
    reason = ck.string(f.get("reason"), child(path, "reason"))
    if reason is not None and not any(reason in code for code in REASON_CODES):
        message = f"{reason!r} is part of no reason code; reason codes: {listing(REASON_CODES)}"
        ck.error(f["reason"].line, child(path, "reason"), message)
    if name is None or check is None or expect is None:
        return None
    return PolicyCase(
        name=name,
        file=ck.file,
        line=node.line,
        region=region,
        consents=consents,
        preferences=preferences,
        check=check,
        expect_allowed=EXPECTATIONS[expect],
        reason=reason,
    )


def _consents(ck: Checker, node: YNode | None, path: str) -> tuple[CaseConsent, ...]:
    out: list[CaseConsent] = []
    found = ck.sequence(node, path)
    for i, item in enumerate(found.items if found else ()):
        at = child(path, i)
        f = ck.fields(item, at, ("purpose", "decision"), CONSENT_OPTIONAL) or {}
        purpose = ck.string(f.get("purpose"), child(at, "purpose"))
        decision = ck.choice(f.get("decision"), child(at, "decision"), DECISIONS, "decision")
        channel = ck.string(f.get("channel"), child(at, "channel"))
        notice = ck.string(f.get("notice_version"), child(at, "notice_version"))
        expires = ck.integer(f.get("expires_in_days"), child(at, "expires_in_days"))
        if purpose is not None and decision is not None:
            out.append(CaseConsent(purpose, decision, channel, notice, expires, item.line))
    return tuple(out)


def _switches(ck: Checker, node: YNode | None, path: str) -> dict[str, bool]:
    found = ck.mapping(node, path)
    out: dict[str, bool] = {}
    for e in found.entries if found else ():
        value = ck.boolean(e.value, child(path, e.key))
        if value is not None:
            out[e.key] = value
    return out


def _preferences(ck: Checker, node: YNode | None, path: str) -> CasePreferences:
    f = ck.fields(node, path, (), ("channels", "topics")) or {}
    channels = _switches(ck, f.get("channels"), child(path, "channels"))
    return CasePreferences(channels, _switches(ck, f.get("topics"), child(path, "topics")))


def _check(ck: Checker, node: YNode | None, path: str) -> CaseCheck | None:
    f = ck.fields(node, path, (), CHECK_KEYS)
    if f is None or node is None:
        return None
    check = CaseCheck(*(ck.string(f.get(key), child(path, key)) for key in CHECK_KEYS))
    if check.purpose is None and check.capability is None and check.topic is None:
        ck.error(node.line, path, "check a purpose, a capability or a topic")
    elif check.purpose is not None and check.capability is not None:
        ck.error(node.line, path, "check a purpose or a capability, not both")
    else:
        return check
    return None


def lint_cases(policy: Policy, cases: Sequence[PolicyCase]) -> list[PolicyIssue]:
    """Set-up mistakes against `policy` (regions, consents, preferences it does not declare).

    The `check` is left alone: asking about an unknown purpose is a legitimate test.
    """
    issues: list[PolicyIssue] = []
    for case in cases:

        def issue(line: int, message: str, case: PolicyCase = case) -> None:
            issues.append(PolicyIssue(case.file, line, case.name, message))

        if case.region is not None and case.region not in policy.regions:
            issue(case.line, f"unknown region {case.region!r}; declared: {listing(policy.regions)}")
        for consent in case.consents:
            purpose = policy.purposes.get(consent.purpose)
            if purpose is None:
                issue(consent.line, f"consent for unknown purpose {consent.purpose!r}")
            elif consent.channel is not None and consent.channel not in purpose.channels:
                issue(consent.line, f"purpose {purpose.name!r} has no channel {consent.channel!r}")
            elif consent.notice_version is not None and not purpose.notice(consent.notice_version):
                issue(
                    consent.line,
                    f"purpose {purpose.name!r} has no notice {consent.notice_version!r}",
                )
        for channel in case.preferences.channels.keys() - set(policy.channels):
            issue(case.line, f"preferences name unknown channel {channel!r}")
        for topic in case.preferences.topics.keys() - policy.topics.keys():
            issue(case.line, f"preferences name unknown topic {topic!r}")
    return issues


def run_cases(policy: Policy, cases: Sequence[PolicyCase], evaluate: Evaluator) -> list[CaseResult]:
    """Run every case through `evaluate`; an evaluator that raises fails that case only."""
    return [_run(policy, case, evaluate) for case in cases]


def _word(allowed: bool) -> str:
    return "allow" if allowed else "deny"


def _run(policy: Policy, case: PolicyCase, evaluate: Evaluator) -> CaseResult:
    try:
        allowed, reasons = evaluate(policy, case)
    except Exception as error:
        message = f"the evaluator raised {type(error).__name__}: {error}"
        return CaseResult(case, False, False, (), message)
    got = tuple(reasons)
    problems: list[str] = []
    if allowed != case.expect_allowed:
        problems.append(f"expected {_word(case.expect_allowed)}, got {_word(allowed)}")
    if case.reason is not None and not any(case.reason in code for code in got):
        problems.append(f"expected a reason containing {case.reason!r}")
    summary = f"reasons: {', '.join(got) or 'none'}"
    message = "; ".join(problems) or _word(allowed)
    return CaseResult(case, not problems, allowed, got, f"{message} ({summary})")


def format_results(results: Sequence[CaseResult]) -> str:
    """A report: one line per case, failures located by file and line, then the counts."""
    lines = [
        f"{'PASS' if r.passed else 'FAIL'} {r.case.file}:{r.case.line}: {r.case.name}: {r.message}"
        for r in results
    ]
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)
