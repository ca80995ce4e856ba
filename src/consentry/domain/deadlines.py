"""Data-subject request (DSR) deadlines: pure date arithmetic, with the clock passed in.

Rules (all times UTC; a request is due at the END of its due date, UTC):

- The receipt date is the UTC date of `received_at`, which must be timezone-aware; a period runs
  from the day after it (EU Regulation 1182/71 Art. 3(1): the day of the event does not count).
- MONTHS, GDPR Art. 12(3) ("within one month of receipt", "extended by two further months")
  with Reg. 1182/71 Art. 3(2)(c): the period ends on the same day of the month N months later,
  or on that month's last day when it has no such day (Jan 31 + 1 month = Feb 28, or Feb 29 in a
  leap year; Mar 31 + 1 month = Apr 30).
- DAYS: calendar days after the receipt date (CCPA, Cal. Civ. Code § 1798.130(a)(2): 45 days,
  extendable once by 45 more; Jan 1 + 45 days = Feb 15).
- BUSINESS_DAYS: Monday to Friday days not in the regulation's holidays, counted from the day
  after the start (CCPA Regulations, 11 CCR § 7021(a): confirm receipt within 10 business days;
  § 7026(f): honour an opt-out of sale/sharing within 15 business days).
- roll_forward, Reg. 1182/71 Art. 3(4) (and the UK ICO's guidance on the right of access): a
  due date (acknowledge, respond, extended) on a Saturday, Sunday or holiday moves to the next
  business day; a business-day result already is one. CCPA counts calendar days and does not
  roll.
- Extension: when the extension has the respond period's unit, the extended due date is the sum
  of both periods counted from receipt (GDPR: receipt + 3 months; CCPA: receipt + 90 days);
  otherwise the extension runs from the original due date. Only one extension is allowed.
- An opt-out of sale/sharing under a regulation with an `opt_out` period is due by that period
  and cannot be extended.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

OPT_OUT_SALE_SHARE = "opt_out_sale_share"
MAX_AMOUNT = 366
_PERIOD = re.compile(r"([0-9]+) +(days?|business[ _]days?|months?)")
_DAY = timedelta(days=1)


class Unit(StrEnum):
    DAYS = "days"
    BUSINESS_DAYS = "business_days"
    MONTHS = "months"


_SINGULAR = {Unit.DAYS: "day", Unit.BUSINESS_DAYS: "business day", Unit.MONTHS: "month"}


def is_business_day(day: date, holidays: frozenset[date] = frozenset()) -> bool:
    return day.weekday() < 5 and day not in holidays


def next_business_day(day: date, holidays: frozenset[date] = frozenset()) -> date:
    """`day` itself if it is a business day, else the first business day after it."""
    while not is_business_day(day, holidays):
        day += _DAY
    return day


def add_months(start: date, months: int) -> date:
    """The same day of the month `months` later, or that month's last day if it is shorter."""
    year, month = divmod(start.year * 12 + start.month - 1 + months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last))


@dataclass(frozen=True, slots=True)
class Period:
    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        if self.amount < 1:
            raise ValueError(f"a period needs a positive amount, got {self.amount}")

    def after(self, start: date, holidays: frozenset[date] = frozenset()) -> date:
        """The last day of this period counted from the day after `start`."""
        if self.unit is Unit.MONTHS:
            return add_months(start, self.amount)
        if self.unit is Unit.DAYS:
            return start + timedelta(days=self.amount)
        day, left = start, self.amount
        while left:
            day += _DAY
            if is_business_day(day, holidays):
                left -= 1
        return day

    def __str__(self) -> str:
        name = _SINGULAR[self.unit]
        return f"{self.amount} {name if self.amount == 1 else name + 's'}"


def parse_period(text: str) -> Period:
    """'1 month', '45 days', '10 business days' (or 'business_days') as a `Period`."""
    found = _PERIOD.fullmatch(text.strip())
    if found is None:
        raise ValueError(
            f"invalid period {text!r}: expected '<number> days', '<number> business days' or"
            " '<number> months', e.g. '1 month', '45 days', '10 business days'"
        )
    amount = int(found[1])
    if not 1 <= amount <= MAX_AMOUNT:
        raise ValueError(f"invalid period {text!r}: the number must be 1 to {MAX_AMOUNT}")
    word = found[2].replace(" ", "_").removesuffix("s")
    return Period(amount, Unit(word + "s"))


@dataclass(frozen=True, slots=True)
class Regulation:
    name: str
    respond: Period  # answer within, counted from receipt
    extension: Period | None = None  # one extension allowed; None: cannot extend
    acknowledge: Period | None = None  # confirm receipt within (CCPA: 10 business days)
    opt_out: Period | None = None  # honour opt-out of sale/share within (CCPA: 15 business days)
    roll_forward: bool = False  # a due date on Sat/Sun/holiday moves to the next business day
    holidays: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True)
class Clocks:
    received_on: date
    acknowledge_by: date | None
    respond_by: date  # the original due date
    extended_to: date | None  # the due date an extension would give / gave (None: not extendable)

    def due(self, extended: bool) -> date:
        """The due date in force; asking for an extension that cannot exist is an error."""
        if not extended:
            return self.respond_by
        if self.extended_to is None:
            raise ValueError("this request cannot be extended")
        return self.extended_to


def utc_date(moment: datetime) -> date:
    """The UTC calendar date of a timezone-aware datetime; a naive one is refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC).date()


def _due(regulation: Regulation, period: Period, start: date) -> date:
    """`period` after `start`, moved to the next business day if the regulation rolls."""
    end = period.after(start, regulation.holidays)
    return next_business_day(end, regulation.holidays) if regulation.roll_forward else end


def clocks(regulation: Regulation, received_at: datetime, request_type: str) -> Clocks:
    """The acknowledge, respond and extension due dates of a request received at `received_at`."""
    received = utc_date(received_at)
    ack = regulation.acknowledge
    acknowledge_by = None if ack is None else _due(regulation, ack, received)
    if request_type == OPT_OUT_SALE_SHARE and regulation.opt_out is not None:
        opt_out_by = _due(regulation, regulation.opt_out, received)
        return Clocks(received, acknowledge_by, opt_out_by, None)  # opt-outs cannot be extended
    respond, extension = regulation.respond, regulation.extension
    respond_by = _due(regulation, respond, received)
    if extension is None:
        extended_to = None
    elif extension.unit is respond.unit:
        total = Period(respond.amount + extension.amount, respond.unit)
        extended_to = _due(regulation, total, received)
    else:
        extended_to = _due(regulation, extension, respond_by)
    return Clocks(received, acknowledge_by, respond_by, extended_to)


def days_left(due: date, now: datetime) -> int:
    """Calendar days from now's UTC date to `due`: 0 on the due date, negative once overdue."""
    return (due - utc_date(now)).days


def is_overdue(due: date, now: datetime) -> bool:
    """True once now's UTC date is past `due` (a request is due at the end of its due date)."""
    return utc_date(now) > due


BUILTIN_REGULATIONS: dict[str, Regulation] = {
    r.name: r
    for r in (
        Regulation("GDPR", Period(1, Unit.MONTHS), Period(2, Unit.MONTHS), roll_forward=True),
        Regulation("UK-GDPR", Period(1, Unit.MONTHS), Period(2, Unit.MONTHS), roll_forward=True),
        Regulation(
            "CCPA",
            respond=Period(45, Unit.DAYS),
            extension=Period(45, Unit.DAYS),
            acknowledge=Period(10, Unit.BUSINESS_DAYS),
            opt_out=Period(15, Unit.BUSINESS_DAYS),
        ),
    )
}
