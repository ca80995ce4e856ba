"""The data-subject request workflow as a state machine: every (state, step), allowed or refused,
and the checks each step makes of what it is given."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import pytest

from consentry.domain.deadlines import BUILTIN_REGULATIONS, Regulation
from consentry.domain.request_workflow import (
    MAX_REASON,
    TRANSITIONS,
    Effect,
    Refusal,
    RequestState,
    RequestType,
    Step,
    Transition,
    before_fulfilling,
    decide,
    reason_refusal,
)

GDPR = BUILTIN_REGULATIONS["GDPR"]
CCPA = BUILTIN_REGULATIONS["CCPA"]
RECEIVED_AT = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)
S = RequestState


@dataclass(frozen=True)
class Facts:
    state: RequestState = S.RECEIVED
    type: RequestType = RequestType.ACCESS
    regulation: str = "GDPR"
    received_at: datetime = RECEIVED_AT
    respond_by: date = date(2026, 2, 16)
    extended_to: date | None = None
    acknowledged_at: datetime | None = None
    extended_at: datetime | None = None
    closed_at: datetime | None = None


def run(
    facts: Facts,
    step: Step,
    *,
    reason: str | None = "because",
    method: str | None = "id card",
    regulation: Regulation | None = GDPR,
    now: datetime = NOW,
) -> Transition | Refusal:
    return decide(facts, step, now=now, regulation=regulation, reason=reason, method=method)


def allowed(outcome: Transition | Refusal) -> Transition:
    assert isinstance(outcome, Transition), outcome
    return outcome


def refusal(outcome: Transition | Refusal) -> Refusal:
    assert isinstance(outcome, Refusal), outcome
    return outcome


# Written out by hand, not derived from TRANSITIONS: the state each step leads to from each
# state, or None where the step is refused.
OPEN_ALL = {Step.ACKNOWLEDGE: "same", Step.EXTEND: "same", Step.REJECT: S.REJECTED}
OPEN_ALL |= {Step.FAIL: "same"}
EXPECTED: dict[RequestState, dict[Step, RequestState | str | None]] = {
    S.RECEIVED: {Step.VERIFY: S.VERIFIED, Step.START: None, Step.COMPLETE: None, **OPEN_ALL},
    S.VERIFIED: {Step.VERIFY: None, Step.START: S.IN_PROGRESS, Step.COMPLETE: None, **OPEN_ALL},
    S.IN_PROGRESS: {
        Step.VERIFY: None,
        Step.START: S.IN_PROGRESS,
        Step.COMPLETE: S.COMPLETED,
        **OPEN_ALL,
    },
    S.COMPLETED: dict.fromkeys(Step),
    S.REJECTED: dict.fromkeys(Step),
}


@pytest.mark.parametrize(("state", "step"), list(itertools.product(RequestState, Step)))
def test_every_state_and_step(state: RequestState, step: Step) -> None:
    closed = None if state.open else datetime(2026, 1, 18, tzinfo=UTC)
    outcome = run(Facts(state=state, closed_at=closed), step)
    expected = EXPECTED[state][step]
    if expected is None:
        refused = refusal(outcome)
        assert refused.conflict
        assert (state, step) not in TRANSITIONS
        return
    assert allowed(outcome).state == (state if expected == "same" else expected)
    assert allowed(outcome).step is step


def test_the_table_has_no_transition_out_of_a_closed_state() -> None:
    assert {state for state, _ in TRANSITIONS} == {S.RECEIVED, S.VERIFIED, S.IN_PROGRESS}


@pytest.mark.parametrize("state", [S.COMPLETED, S.REJECTED])
def test_a_closed_request_says_when_it_closed(state: RequestState) -> None:
    facts = Facts(state=state, closed_at=datetime(2026, 1, 18, 9, tzinfo=UTC))
    message = refusal(run(facts, Step.REJECT)).message
    assert message == (
        f"the request is already {state.value} (on 2026-01-18);"
        " file a new request if the customer asks again"
    )


def test_refusals_say_what_to_do_instead() -> None:
    assert "it was verified before" in refusal(run(Facts(state=S.VERIFIED), Step.VERIFY)).message
    assert "verify the customer's identity first" in refusal(run(Facts(), Step.START)).message
    assert "only a request in progress completes" in refusal(run(Facts(), Step.COMPLETE)).message


@pytest.mark.parametrize(
    ("step", "effects"),
    [
        (Step.VERIFY, set()),
        (Step.ACKNOWLEDGE, {Effect.ACKNOWLEDGE}),
        (Step.EXTEND, {Effect.EXTEND, Effect.KEEP_REASON}),
        (Step.REJECT, {Effect.CLOSE, Effect.KEEP_REASON}),
        (Step.FAIL, {Effect.KEEP_REASON}),
    ],
)
def test_effects_of_the_steps_from_received(step: Step, effects: set[Effect]) -> None:
    assert allowed(run(Facts(), step)).effects == effects


def test_effects_of_start_and_complete() -> None:
    assert allowed(run(Facts(state=S.VERIFIED), Step.START)).effects == set()
    done = allowed(run(Facts(state=S.IN_PROGRESS), Step.COMPLETE))
    assert done.effects == {Effect.CLOSE, Effect.KEEP_REASON}


# -- what each step needs ------------------------------------------------------------------------


def test_verify_needs_a_method_and_records_it() -> None:
    assert allowed(run(Facts(), Step.VERIFY)).details == {"method": "id card"}
    for missing in (None, ""):
        refused = refusal(run(Facts(), Step.VERIFY, method=missing))
        assert not refused.conflict
        assert refused.field == "method"


@pytest.mark.parametrize("step", [Step.REJECT, Step.EXTEND])
@pytest.mark.parametrize("reason", [None, "", "   ", "x" * (MAX_REASON + 1)])
def test_reject_and_extend_need_a_reason(step: Step, reason: str | None) -> None:
    refused = refusal(run(Facts(), step, reason=reason))
    assert not refused.conflict
    assert refused.field == "reason"


@pytest.mark.parametrize("step", [Step.ACKNOWLEDGE, Step.FAIL, Step.VERIFY])
def test_other_steps_need_no_reason(step: Step) -> None:
    allowed(run(Facts(), step, reason=None))


def test_complete_needs_no_reason() -> None:
    allowed(run(Facts(state=S.IN_PROGRESS), Step.COMPLETE, reason=None))


def test_a_state_conflict_comes_before_a_missing_reason() -> None:
    closed = Facts(state=S.REJECTED, closed_at=NOW)
    assert refusal(run(closed, Step.REJECT, reason=None)).conflict


def test_receipt_is_acknowledged_once() -> None:
    allowed(run(Facts(), Step.ACKNOWLEDGE))
    refused = refusal(run(Facts(acknowledged_at=NOW), Step.ACKNOWLEDGE))
    assert refused.conflict
    assert refused.message == "receipt was already acknowledged on 2026-01-20"


# -- extensions ----------------------------------------------------------------------------------


def test_an_extension_moves_the_deadline_by_the_regulation() -> None:
    extended = allowed(run(Facts(), Step.EXTEND))
    assert extended.extended_to == date(2026, 4, 15)  # 1 + 2 months from receipt, a weekday
    assert extended.details == {"extended_to": "2026-04-15"}


def test_only_one_extension() -> None:
    once = Facts(extended_at=NOW, extended_to=date(2026, 4, 15))
    refused = refusal(run(once, Step.EXTEND))
    assert refused.conflict
    assert "already extended on 2026-01-20 to 2026-04-15; GDPR allows one" in refused.message


@pytest.mark.parametrize(
    "regulation", [None, Regulation("NOEXT", BUILTIN_REGULATIONS["GDPR"].respond)]
)
def test_no_extension_where_the_regulation_has_none(regulation: Regulation | None) -> None:
    refused = refusal(run(Facts(regulation="NOEXT"), Step.EXTEND, regulation=regulation))
    assert refused.message == "regulation 'NOEXT' allows no extension (see the policy)"


def test_an_opt_out_cannot_be_extended() -> None:
    facts = Facts(type=RequestType.OPT_OUT_SALE_SHARE, regulation="CCPA")
    refused = refusal(run(facts, Step.EXTEND, regulation=CCPA))
    assert refused.message == "CCPA allows no extension for a opt_out_sale_share request"


def test_an_extension_is_decided_before_the_original_deadline() -> None:
    on_the_day = datetime(2026, 2, 16, 23, 59, tzinfo=UTC)
    allowed(run(Facts(), Step.EXTEND, now=on_the_day))
    refused = refusal(run(Facts(), Step.EXTEND, now=datetime(2026, 2, 17, tzinfo=UTC)))
    assert refused.conflict
    assert "the original deadline (2026-02-16) has passed" in refused.message


def test_a_passed_deadline_is_a_conflict_even_without_a_reason() -> None:
    late = datetime(2026, 3, 1, tzinfo=UTC)
    assert refusal(run(Facts(), Step.EXTEND, now=late, reason=None)).conflict


# -- reasons, fulfilment, names ------------------------------------------------------------------


def test_reason_refusal() -> None:
    assert reason_refusal(None, "x", required=False) is None
    assert reason_refusal("  ", "x", required=False) is None
    assert reason_refusal("ok", "x", required=True) is None
    assert reason_refusal("y" * MAX_REASON, "x", required=True) is None
    missing = reason_refusal(" ", "a note", required=True)
    assert missing == Refusal(False, "say why: a note needs a reason", "reason")
    too_long = reason_refusal("y" * (MAX_REASON + 1), "x", required=False)
    assert too_long == Refusal(False, f"a reason is at most {MAX_REASON} characters", "reason")


@pytest.mark.parametrize(
    ("state", "steps"),
    [(S.VERIFIED, (Step.START,)), (S.IN_PROGRESS, ())],
)
def test_fulfilling_starts_a_verified_request(state: RequestState, steps: tuple[Step]) -> None:
    assert before_fulfilling(state, RequestType.ACCESS, None) == steps


@pytest.mark.parametrize("state", [S.RECEIVED, S.COMPLETED, S.REJECTED])
def test_fulfilling_needs_a_verified_open_request(state: RequestState) -> None:
    refused = before_fulfilling(state, RequestType.ERASURE, None)
    assert isinstance(refused, Refusal)
    assert refused.conflict


@pytest.mark.parametrize("kind", [RequestType.RECTIFICATION, RequestType.RESTRICT])
def test_work_done_by_people_needs_a_note(kind: RequestType) -> None:
    refused = before_fulfilling(S.IN_PROGRESS, kind, None)
    assert isinstance(refused, Refusal)
    assert refused.field == "reason"
    assert f"completing a {kind.value} request" in refused.message
    assert before_fulfilling(S.IN_PROGRESS, kind, "fixed the address") == ()


def test_past_tense_of_every_step() -> None:
    assert [s.past for s in Step] == [
        "verified",
        "acknowledged",
        "extended",
        "rejected",
        "started",
        "completed",
        "failed",
    ]


def test_closed_states() -> None:
    assert [s for s in RequestState if not s.open] == [S.COMPLETED, S.REJECTED]
    assert replace(Facts(), state=S.VERIFIED).state.open
