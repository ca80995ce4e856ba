"""The data-subject request workflow as a state machine: which step may follow which, and what
each one does.

    received --verify--> verified --start--> in_progress --complete--> completed
    any open state --reject--> rejected (with a reason)
    any open state: acknowledge (once), extend (once, with a reason), fail (stays as it is)

Pure: the request as it stands, a step and what the step brings (a reason, a method, the
regulation's rules, the time) in; the `Transition` to make, or the `Refusal` that says why not,
out. `dsr.requests` stores the transition and writes its audit entry in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from consentry.domain.deadlines import Regulation, clocks, is_overdue

MAX_REASON = 2000


class RequestType(StrEnum):
    ACCESS = "access"
    PORTABILITY = "portability"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    RESTRICT = "restrict"
    OPT_OUT_SALE_SHARE = "opt_out_sale_share"


class RequestState(StrEnum):
    RECEIVED = "received"
    VERIFIED = "verified"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"

    @property
    def open(self) -> bool:
        return self not in (RequestState.COMPLETED, RequestState.REJECTED)


class RequestOrigin(StrEnum):
    """How a request came in (stored, and shown, as its `channel`)."""

    STAFF = "staff"  # filed by an API key on the customer's behalf
    CUSTOMER = "customer"  # filed by the customer themselves
    BULK = "bulk"  # part of a bulk erasure


class Step(StrEnum):
    VERIFY = "verify"
    ACKNOWLEDGE = "acknowledge"
    EXTEND = "extend"
    REJECT = "reject"
    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"

    @property
    def past(self) -> str:
        """The step as it is named in the request's history and the audit log."""
        return _PAST[self]


_PAST = {
    Step.VERIFY: "verified",
    Step.ACKNOWLEDGE: "acknowledged",
    Step.EXTEND: "extended",
    Step.REJECT: "rejected",
    Step.START: "started",
    Step.COMPLETE: "completed",
    Step.FAIL: "failed",
}


class Effect(StrEnum):
    CLOSE = "close"  # the request is closed now
    ACKNOWLEDGE = "acknowledge"  # receipt was confirmed to the customer now
    EXTEND = "extend"  # the deadline moves to the regulation's extended one
    KEEP_REASON = "keep_reason"  # a reason given is kept in the request's sealed notes


@dataclass(frozen=True, slots=True)
class Rule:
    to: RequestState
    effects: frozenset[Effect] = frozenset()
    reason: str | None = None  # a reason is required; what it is for (said when it is missing)
    method: bool = False  # how the customer's identity was verified is required


_OPEN = tuple(s for s in RequestState if s.open)
_S = RequestState
_KEEP = frozenset({Effect.KEEP_REASON})
_CLOSE = frozenset({Effect.CLOSE, Effect.KEEP_REASON})

TRANSITIONS: dict[tuple[RequestState, Step], Rule] = {
    (_S.RECEIVED, Step.VERIFY): Rule(_S.VERIFIED, method=True),
    (_S.VERIFIED, Step.START): Rule(_S.IN_PROGRESS),
    (_S.IN_PROGRESS, Step.START): Rule(_S.IN_PROGRESS),  # fulfilling again carries on
    (_S.IN_PROGRESS, Step.COMPLETE): Rule(_S.COMPLETED, _CLOSE),
    **{(s, Step.ACKNOWLEDGE): Rule(s, frozenset({Effect.ACKNOWLEDGE})) for s in _OPEN},
    **{
        (s, Step.EXTEND): Rule(
            s,
            frozenset({Effect.EXTEND, Effect.KEEP_REASON}),
            reason="an extension (the customer must be told why)",
        )
        for s in _OPEN
    },
    **{(s, Step.REJECT): Rule(_S.REJECTED, _CLOSE, reason="rejecting a request") for s in _OPEN},
    # A failure (a plugin that failed) stays on record; the request stays as it is.
    **{(s, Step.FAIL): Rule(s, _KEEP) for s in _OPEN},
}


class RequestFacts(Protocol):
    """What the rules read of a request (`dsr.requests.DsrRequest` has it)."""

    @property
    def type(self) -> RequestType: ...
    @property
    def regulation(self) -> str: ...
    @property
    def state(self) -> RequestState: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def respond_by(self) -> date: ...
    @property
    def extended_to(self) -> date | None: ...
    @property
    def acknowledged_at(self) -> datetime | None: ...
    @property
    def extended_at(self) -> datetime | None: ...
    @property
    def closed_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    conflict: bool  # True: the request's state forbids the step; False: what was given is wrong
    message: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    step: Step
    state: RequestState  # the state after the step
    effects: frozenset[Effect]
    extended_to: date | None = None  # with Effect.EXTEND: the new due date
    details: dict[str, str] = field(default_factory=dict)  # for the audit entry: no personal data


def decide(
    request: RequestFacts,
    step: Step,
    *,
    now: datetime,
    regulation: Regulation | None,
    reason: str | None = None,
    method: str | None = None,
) -> Transition | Refusal:
    """The transition `step` makes from where `request` stands, or why it may not.

    Checked in this order: the state (the table), what an effect needs (acknowledged once,
    extended once and in time), then what the step needs given (a reason, a method)."""
    rule = TRANSITIONS.get((request.state, step))
    if rule is None:
        return Refusal(True, _not_from_here(request, step))
    details: dict[str, str] = {}
    extended_to: date | None = None
    if Effect.ACKNOWLEDGE in rule.effects and request.acknowledged_at is not None:
        return Refusal(
            True, f"receipt was already acknowledged on {request.acknowledged_at:%Y-%m-%d}"
        )
    if Effect.EXTEND in rule.effects:
        extension = _extension(request, regulation, now)
        if isinstance(extension, Refusal):
            return extension
        extended_to = extension
        details["extended_to"] = extension.isoformat()
    if rule.reason is not None:
        refused = reason_refusal(reason, rule.reason, required=True)
        if refused is not None:
            return refused
    if rule.method:
        if not method:
            return Refusal(False, "say how the customer's identity was verified", "method")
        details["method"] = method
    return Transition(step, rule.to, rule.effects, extended_to, details)


def _not_from_here(request: RequestFacts, step: Step) -> str:
    state = request.state
    if not state.open:
        on = f" (on {request.closed_at:%Y-%m-%d})" if request.closed_at else ""
        return (
            f"the request is already {state.value}{on};"
            " file a new request if the customer asks again"
        )
    if step is Step.VERIFY:
        return f"the request is already {state.value}; it was verified before"
    if step is Step.START:
        return "verify the customer's identity first (POST /v1/requests/{id}/verify)"
    return f"the request is {state.value}; only a request in progress completes"


def _extension(
    request: RequestFacts, regulation: Regulation | None, now: datetime
) -> date | Refusal:
    """The due date one extension gives, decided before the original deadline passed."""
    name = request.regulation
    if request.extended_at is not None:
        return Refusal(
            True,
            f"the deadline was already extended on {request.extended_at:%Y-%m-%d} to"
            f" {request.extended_to}; {name} allows one extension",
        )
    if regulation is None or regulation.extension is None:
        return Refusal(True, f"regulation {name!r} allows no extension (see the policy)")
    extended_to = clocks(regulation, request.received_at, request.type.value).extended_to
    if extended_to is None:
        return Refusal(True, f"{name} allows no extension for a {request.type.value} request")
    if is_overdue(request.respond_by, now):
        return Refusal(
            True,
            f"the original deadline ({request.respond_by}) has passed; an extension must be"
            " decided and told to the customer before it",
        )
    return extended_to


def reason_refusal(reason: str | None, what: str, *, required: bool) -> Refusal | None:
    """Why a free-text reason will not do (blank when one is required, or too long), or None."""
    if reason is None or not reason.strip():
        return Refusal(False, f"say why: {what} needs a reason", "reason") if required else None
    if len(reason) > MAX_REASON:
        return Refusal(False, f"a reason is at most {MAX_REASON} characters", "reason")
    return None


def before_fulfilling(
    state: RequestState, kind: RequestType, note: str | None
) -> tuple[Step, ...] | Refusal:
    """The steps to take before the work of fulfilling a request (the start, when it has not
    started), or why it cannot be fulfilled. A request done by people (rectification,
    restriction) needs a note saying what was done."""
    if state is RequestState.RECEIVED:
        return Refusal(
            True,
            "verify the customer's identity first (POST /v1/requests/{id}/verify), then fulfil",
        )
    if not state.open:
        return Refusal(True, f"the request is already {state.value}")
    if kind in (RequestType.RECTIFICATION, RequestType.RESTRICT):
        refused = reason_refusal(
            note, f"completing a {kind.value} request (say what was done)", required=True
        )
        if refused is not None:
            return refused
    return (Step.START,) if state is RequestState.VERIFIED else ()
