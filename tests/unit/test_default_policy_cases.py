"""The default policy's own test cases, run through the service's decision logic."""

from __future__ import annotations

from consentry.policy.cases import lint_cases, load_cases, run_cases
from consentry.policy.evaluate import evaluate_case
from consentry.policy.loader import load_policy
from consentry.settings import DEFAULT_POLICY


def test_default_policy_cases_pass() -> None:
    """Every case in policies/tests/ gets the decision and reason it expects."""
    policy = load_policy(DEFAULT_POLICY)
    cases = load_cases(DEFAULT_POLICY.parent / "tests")
    assert len(cases) >= 12
    assert lint_cases(policy, cases) == []
    failures = [r.message for r in run_cases(policy, cases, evaluate_case) if not r.passed]
    assert failures == []
