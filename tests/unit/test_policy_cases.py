"""Policy test cases: parsing with line numbers, linting against a policy, running, reporting."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentry.domain.purposes import Policy
from consentry.policy.cases import (
    REASON_CODES,
    CaseCheck,
    CaseConsent,
    CasePreferences,
    PolicyCase,
    format_results,
    lint_cases,
    load_cases,
    parse_cases,
    run_cases,
)
from consentry.policy.loader import PolicyError, load_policy

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = ROOT / "policies" / "default.yaml"
DEFAULT_CASES = ROOT / "policies" / "tests"

ONE_CASE = """\
- name: email off beats consent
  region: EU
  consents:
    - purpose: marketing_email
      decision: granted
      channel: email
      notice_version: "2"
      expires_in_days: 30
  preferences:
    channels: {email: false}
    topics: {newsletter: true}
  check: {purpose: marketing_email, channel: email, topic: newsletter}
  expect: deny
  reason: channel_off
"""


def replace(first: int, *lines: str, last: int | None = None) -> str:
    src = ONE_CASE.splitlines()
    src[first - 1 : last or first] = lines
    return "\n".join(src) + "\n"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(DEFAULT_POLICY)


def test_a_case_parses_into_frozen_values() -> None:
    """Every key of a case lands in typed fields, with the file and line of the case."""
    [case] = parse_cases(ONE_CASE.encode(), "c.yaml")
    assert case.name == "email off beats consent"
    assert (case.file, case.line, case.region) == ("c.yaml", 1, "EU")
    assert case.consents == (CaseConsent("marketing_email", "granted", "email", "2", 30),)
    assert case.consents[0].line == 4
    assert case.preferences == CasePreferences({"email": False}, {"newsletter": True})
    assert case.check == CaseCheck("marketing_email", None, "email", "newsletter")
    assert case.expect_allowed is False and case.reason == "channel_off"


BROKEN = [
    ("missing expect", replace(13, ""), 1, "missing required key 'expect'"),
    ("bad expectation", replace(13, "  expect: maybe"), 13, "unknown expectation 'maybe'"),
    ("bad decision", replace(5, "      decision: yes please"), 5,
     "unknown decision 'yes please'; allowed: denied, granted, pending, withdrawn"),
    ("unknown key with hint", replace(2, "  regoin: EU"), 2,
     "unknown key 'regoin' (did you mean 'region'?)"),
    ("purpose and capability", replace(12, "  check: {purpose: a, capability: b.c}"), 12,
     "not both"),
    ("nothing to check", replace(12, "  check: {channel: email}"), 12,
     "check a purpose, a capability or a topic"),
    ("reason that is no code", replace(14, "  reason: chanel_off"), 14,
     "'chanel_off' is part of no reason code"),
    ("expires not an integer", replace(8, "      expires_in_days: soon"), 8, "expected an integer"),
    ("switch not a boolean", replace(10, "    channels: {email: off please}"), 10,
     "expected true or false"),
    ("consents not a list", replace(3, "  consents: granted", last=8), 3, "expected a list"),
    ("duplicate case name", ONE_CASE + ONE_CASE.replace("region: EU", "region: UK"), 15,
     "duplicate case name (first on line 1)"),
    ("duplicate key", replace(2, "  region: EU", "  region: UK"), 3,
     "duplicate key 'region' (first on line 2)"),
    ("root not a list", "name: x\n", 1, "expected a list, got a mapping"),
    ("empty list", "[]\n", 1, "the file has no cases"),
    ("syntax error", replace(12, "  check: {purpose: x"), 13, "YAML syntax error"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_case_file_is_reported_at_its_line(text: str, line: int, message: str) -> None:
    """Each broken case file raises PolicyError naming the offending line and the problem."""
    with pytest.raises(PolicyError) as caught:
        parse_cases(text.encode(), "c.yaml")
    found = [i for i in caught.value.issues if message in i.message]
    assert found, f"no issue contains {message!r}:\n{caught.value}"
    assert found[0].line == line, str(caught.value)


def test_default_cases_load_and_match_the_default_policy(policy: Policy) -> None:
    """The shipped cases parse, cover both outcomes, and set up only what the policy declares."""
    cases = load_cases(DEFAULT_CASES)
    assert len(cases) >= 12
    assert {c.expect_allowed for c in cases} == {True, False}
    assert lint_cases(policy, cases) == []
    reasons = {c.reason for c in cases}
    assert {"region_default_deny", "channel_off", "topic_off", "unknown_purpose"} <= reasons
    assert all(r is None or any(r in code for code in REASON_CODES) for r in reasons)


def test_default_cases_cover_the_required_scenarios() -> None:
    """The shipped cases include the expired, pending, GPC and capability scenarios."""
    cases = load_cases(DEFAULT_CASES)
    assert any(c.consents and c.consents[0].expires_in_days == -1 for c in cases)
    assert any(c.consents and c.consents[0].decision == "pending" for c in cases)
    assert any(c.region == "US-CA" and c.check.purpose == "sale_or_share" for c in cases)
    assert any(c.check.capability == "segments.membership" and c.expect_allowed for c in cases)


def test_load_cases_reports_every_file_at_once(tmp_path: Path) -> None:
    """Problems in several case files of a directory come back in one PolicyError."""
    (tmp_path / "a.yaml").write_text(replace(13, "  expect: maybe"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(replace(5, "      decision: nah"), encoding="utf-8")
    (tmp_path / "ignored.txt").write_text("not yaml: [", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_cases(tmp_path)
    assert [(Path(i.file).name, i.line) for i in caught.value.issues] == [
        ("a.yaml", 13),
        ("b.yaml", 5),
    ]


def test_lint_flags_setup_the_policy_does_not_declare(policy: Policy) -> None:
    """Unknown regions, purposes, notice versions, channels and topics in the set-up are flagged."""
    text = """\
- name: typos everywhere
  region: MARS
  consents:
    - {purpose: marketting, decision: granted}
    - {purpose: marketing_email, decision: granted, notice_version: "9"}
    - {purpose: marketing_email, decision: granted, channel: sms}
  preferences: {channels: {fax: false}, topics: {gossip: true}}
  check: {purpose: telepathy}
  expect: deny
"""
    issues = lint_cases(policy, parse_cases(text.encode(), "t.yaml"))
    assert [i.line for i in issues] == [1, 4, 5, 6, 1, 1]
    assert "unknown region 'MARS'" in issues[0].message
    assert "no notice '9'" in issues[2].message
    assert "no channel 'sms'" in issues[3].message
    assert all("telepathy" not in i.message for i in issues)  # the check itself may be unknown


def _case(expect_allowed: bool, reason: str | None = None) -> PolicyCase:
    return PolicyCase(
        name="c",
        file="t.yaml",
        line=7,
        region="EU",
        consents=(),
        preferences=CasePreferences(),
        check=CaseCheck(purpose="marketing_email"),
        expect_allowed=expect_allowed,
        reason=reason,
    )


def test_run_cases_passes_when_decision_and_reason_match(policy: Policy) -> None:
    """A case passes when the evaluator's decision matches and a reason contains the substring."""
    [result] = run_cases(
        policy, [_case(False, "deny")], lambda p, c: (False, ["region_default_deny"])
    )
    assert result.passed and result.got_allowed is False
    assert result.got_reasons == ("region_default_deny",)


def test_run_cases_fails_on_wrong_decision_or_missing_reason(policy: Policy) -> None:
    """A wrong decision or an absent expected reason fails the case, saying what was got."""
    cases = [_case(False), _case(True, "granted")]
    results = run_cases(policy, cases, lambda p, c: (True, ["legitimate_interest"]))
    assert [r.passed for r in results] == [False, False]
    assert "expected deny, got allow" in results[0].message
    assert "expected a reason containing 'granted'" in results[1].message
    assert "legitimate_interest" in results[1].message


def test_an_evaluator_that_raises_fails_only_its_case(policy: Policy) -> None:
    """An exception in the evaluator becomes a failed result; later cases still run."""

    def evaluate(p: Policy, case: PolicyCase) -> tuple[bool, list[str]]:
        if case.expect_allowed:
            raise KeyError("boom")
        return False, ["denied"]

    results = run_cases(policy, [_case(True), _case(False)], evaluate)
    assert [r.passed for r in results] == [False, True]
    assert "the evaluator raised KeyError" in results[0].message


def test_format_results_locates_failures_and_counts(policy: Policy) -> None:
    """The report has one line per case, located by file and line, and closes with the counts."""
    results = run_cases(policy, [_case(False), _case(True)], lambda p, c: (False, ["denied"]))
    report = format_results(results).splitlines()
    assert report[0].startswith("PASS t.yaml:7: c: deny")
    assert report[1].startswith("FAIL t.yaml:7: c: expected allow, got deny")
    assert report[-1] == "1 passed, 1 failed"
