"""DSR deadlines: month ends, leap years, business days, roll forward, extensions, overdue."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.deadlines import (
    BUILTIN_REGULATIONS,
    Clocks,
    Period,
    Regulation,
    Unit,
    clocks,
    days_left,
    is_overdue,
    parse_period,
)

GDPR = BUILTIN_REGULATIONS["GDPR"]
CCPA = BUILTIN_REGULATIONS["CCPA"]
EST = timezone(timedelta(hours=-5))
MONTH = Period(1, Unit.MONTHS)


def at(day: str, time: str = "12:00") -> datetime:
    """A fixed UTC instant: the injected 'now' or receipt time of a test."""
    return datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=UTC)


def d(day: str) -> date:
    return date.fromisoformat(day)


def days(*isos: str) -> frozenset[date]:
    return frozenset(d(iso) for iso in isos)


@pytest.mark.parametrize(
    ("start", "months", "due"),
    [
        ("2026-01-15", 1, "2026-02-15"),
        ("2026-01-31", 1, "2026-02-28"),
        ("2026-01-30", 1, "2026-02-28"),
        ("2026-03-31", 1, "2026-04-30"),
        ("2026-08-31", 1, "2026-09-30"),
        ("2026-12-31", 1, "2027-01-31"),
        ("2026-12-31", 2, "2027-02-28"),
        ("2026-11-30", 3, "2027-02-28"),
        ("2028-01-31", 1, "2028-02-29"),  # leap year
        ("2028-01-30", 1, "2028-02-29"),
        ("2027-01-31", 1, "2027-02-28"),
        ("2100-01-31", 1, "2100-02-28"),  # divisible by 100: not a leap year
        ("2000-01-31", 1, "2000-02-29"),  # divisible by 400: a leap year
        ("2028-02-29", 12, "2029-02-28"),
    ],
)
def test_a_month_ends_on_the_same_date_or_the_last_day_of_a_shorter_month(
    start: str, months: int, due: str
) -> None:
    """Reg. 1182/71 Art. 3(2)(c): same day of month N months on, else that month's last day."""
    assert Period(months, Unit.MONTHS).after(d(start)) == d(due)


def test_days_are_calendar_days_after_the_start() -> None:
    """Jan 1 + 45 days is Feb 15; weekends count."""
    assert Period(45, Unit.DAYS).after(d("2026-01-01")) == d("2026-02-15")
    assert Period(90, Unit.DAYS).after(d("2026-01-01")) == d("2026-04-01")


@pytest.mark.parametrize(
    ("start", "amount", "holidays", "due"),
    [
        ("2026-01-02", 1, (), "2026-01-05"),  # Friday + 1 -> Monday
        ("2026-01-03", 1, (), "2026-01-05"),  # Saturday + 1 -> Monday
        ("2026-01-01", 10, (), "2026-01-15"),  # Thursday + 10 skips two weekends
        ("2026-12-23", 3, ("2026-12-25",), "2026-12-29"),  # Christmas Friday is skipped
        ("2026-12-30", 3, ("2027-01-01",), "2027-01-05"),  # across the year end and New Year
        ("2026-01-16", 1, ("2026-01-19",), "2026-01-20"),  # Friday + 1 over a holiday Monday
    ],
)
def test_business_days_skip_weekends_and_holidays(
    start: str, amount: int, holidays: tuple[str, ...], due: str
) -> None:
    """Business days count Mon-Fri non-holidays from the day after the start."""
    assert Period(amount, Unit.BUSINESS_DAYS).after(d(start), days(*holidays)) == d(due)


@pytest.mark.parametrize(
    ("text", "period", "shown"),
    [
        ("1 month", Period(1, Unit.MONTHS), "1 month"),
        ("2 months", Period(2, Unit.MONTHS), "2 months"),
        ("45 days", Period(45, Unit.DAYS), "45 days"),
        ("1 day", Period(1, Unit.DAYS), "1 day"),
        ("10 business days", Period(10, Unit.BUSINESS_DAYS), "10 business days"),
        ("10 business_days", Period(10, Unit.BUSINESS_DAYS), "10 business days"),
        (" 366 days ", Period(366, Unit.DAYS), "366 days"),
    ],
)
def test_periods_parse_and_print(text: str, period: Period, shown: str) -> None:
    """parse_period reads the policy's wording; str() writes it back."""
    assert parse_period(text) == period
    assert str(period) == shown


@pytest.mark.parametrize(
    "text",
    [
        "",
        "month",
        "1 week",
        "0 days",
        "367 days",
        "1.5 months",
        "-1 days",
        "1month",
        "\u0661 month",
    ],
)
def test_bad_periods_are_refused_with_a_clear_message(text: str) -> None:
    """Anything but '<1..366> days|business days|months' is a ValueError naming the text."""
    with pytest.raises(ValueError, match="invalid period"):
        parse_period(text)


def test_gdpr_rolls_a_weekend_due_date_to_monday() -> None:
    """Received Jan 31: one month ends Sat Feb 28, so the request is due Mon Mar 2."""
    found = clocks(GDPR, at("2026-01-31"), "access")
    assert found == Clocks(d("2026-01-31"), None, d("2026-03-02"), d("2026-04-30"))


def test_roll_forward_skips_a_holiday_after_a_weekend() -> None:
    """A Saturday due date followed by a holiday Monday moves to Tuesday."""
    regulation = Regulation("X", MONTH, roll_forward=True, holidays=days("2026-03-02"))
    assert clocks(regulation, at("2026-01-31"), "access").respond_by == d("2026-03-03")


def test_roll_forward_skips_a_holiday_on_a_weekday() -> None:
    """Christmas on a Friday moves the due date to Monday Dec 28."""
    regulation = Regulation("X", MONTH, roll_forward=True, holidays=days("2026-12-25"))
    assert clocks(regulation, at("2026-11-25"), "access").respond_by == d("2026-12-28")


def test_roll_forward_applies_to_the_extended_date() -> None:
    """Received Jul 31: + 3 months is Sat Oct 31, so the extension runs to Mon Nov 2."""
    found = clocks(GDPR, at("2026-07-31"), "erasure")
    assert (found.respond_by, found.extended_to) == (d("2026-08-31"), d("2026-11-02"))


def test_ccpa_acknowledge_respond_and_extend() -> None:
    """CCPA: confirm in 10 business days, answer in 45 days, extend to 90; a Sunday stays."""
    found = clocks(CCPA, at("2026-01-01"), "access")
    assert found == Clocks(d("2026-01-01"), d("2026-01-15"), d("2026-02-15"), d("2026-04-01"))
    assert found.respond_by.weekday() == 6  # CCPA counts calendar days and does not roll
    assert (found.due(extended=False), found.due(extended=True)) == (
        found.respond_by,
        found.extended_to,
    )


def test_ccpa_opt_out_is_due_in_15_business_days_without_extension() -> None:
    """An opt-out of sale/sharing runs 15 business days from receipt and cannot be extended."""
    found = clocks(CCPA, at("2026-01-01"), "opt_out_sale_share")
    assert found == Clocks(d("2026-01-01"), d("2026-01-15"), d("2026-01-22"), None)
    with pytest.raises(ValueError, match="cannot be extended"):
        found.due(extended=True)
    with_holiday = Regulation("X", CCPA.respond, opt_out=CCPA.opt_out, holidays=days("2026-01-19"))
    assert clocks(with_holiday, at("2026-01-01"), "opt_out_sale_share").respond_by == d(
        "2026-01-23"
    )


def test_opt_out_under_a_regulation_without_an_opt_out_period_follows_respond() -> None:
    """GDPR has no opt-out period: an opt_out_sale_share request gets the normal clocks."""
    assert clocks(GDPR, at("2026-01-15"), "opt_out_sale_share") == clocks(
        GDPR, at("2026-01-15"), "access"
    )


def test_extension_in_another_unit_runs_from_the_original_due_date() -> None:
    """30 days + 1 month: the month runs from the (rolled) respond_by date."""
    plain = Regulation("X", Period(30, Unit.DAYS), extension=MONTH)
    assert clocks(plain, at("2026-01-01"), "access").extended_to == d("2026-02-28")
    rolled = Regulation("X", Period(30, Unit.DAYS), extension=MONTH, roll_forward=True)
    found = clocks(rolled, at("2026-01-01"), "access")
    assert (found.respond_by, found.extended_to) == (d("2026-02-02"), d("2026-03-02"))


def test_extension_in_the_same_unit_counts_from_receipt() -> None:
    """Jan 31 + 3 months is Apr 30; 2 months from the Feb 28 due date would give Apr 28."""
    regulation = Regulation("X", MONTH, extension=Period(2, Unit.MONTHS))
    assert clocks(regulation, at("2026-01-31"), "access").extended_to == d("2026-04-30")


def test_no_extension_means_no_extended_date() -> None:
    """A regulation without an extension gives extended_to None; due(False) is respond_by."""
    found = clocks(Regulation("APPI", Period(14, Unit.DAYS)), at("2026-01-01"), "access")
    assert found.extended_to is None and found.acknowledge_by is None
    assert found.due(extended=False) == d("2026-01-15")


def test_received_at_must_be_timezone_aware() -> None:
    """A naive datetime is refused rather than guessed at."""
    with pytest.raises(ValueError, match="timezone-aware"):
        clocks(GDPR, datetime(2026, 1, 1, 12), "access")
    with pytest.raises(ValueError, match="timezone-aware"):
        days_left(d("2026-01-01"), datetime(2026, 1, 1, 12))
    with pytest.raises(ValueError, match="timezone-aware"):
        is_overdue(d("2026-01-01"), datetime(2026, 1, 1, 12))


def test_a_non_utc_receipt_counts_from_its_utc_date() -> None:
    """2026-01-31T23:30-05:00 is Feb 1 UTC: due Mar 1 (Sunday), rolled to Mon Mar 2."""
    found = clocks(GDPR, datetime(2026, 1, 31, 23, 30, tzinfo=EST), "access")
    assert found.received_on == d("2026-02-01")
    assert found.respond_by == d("2026-03-02")
    tokyo = timezone(timedelta(hours=9))
    assert clocks(CCPA, datetime(2026, 2, 1, 0, 30, tzinfo=tokyo), "access").received_on == d(
        "2026-01-31"
    )


@pytest.mark.parametrize(
    ("now", "left", "overdue"),
    [
        (at("2026-02-14", "23:59:59"), 1, False),
        (at("2026-02-15", "00:00"), 0, False),  # due today
        (at("2026-02-15", "23:59:59.999999"), 0, False),  # due at the end of the day, UTC
        (at("2026-02-16", "00:00"), -1, True),  # the day after: overdue
        (at("2026-03-17"), -30, True),
        (datetime(2026, 2, 15, 18, 59, tzinfo=EST), 0, False),  # 23:59 UTC
        (datetime(2026, 2, 15, 19, 0, tzinfo=EST), -1, True),  # midnight UTC
    ],
)
def test_days_left_and_overdue_at_the_boundaries(now: datetime, left: int, overdue: bool) -> None:
    """Due today is 0 days left and not overdue; the next UTC day is -1 and overdue."""
    due = d("2026-02-15")
    assert days_left(due, now) == left
    assert is_overdue(due, now) is overdue


# Properties -------------------------------------------------------------------------------------

DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(2500, 12, 31))
HOLIDAYS = st.frozensets(st.dates(min_value=date(2025, 12, 1), max_value=date(2027, 3, 31)))
NEAR = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31))
AWARE = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.timezones()
)


@given(start=DATES, months=st.integers(1, 366))
def test_a_months_due_date_falls_in_the_right_month_and_after_receipt(
    start: date, months: int
) -> None:
    """N months after a date is in the Nth month after it, never before it."""
    due = Period(months, Unit.MONTHS).after(start)
    assert due > start
    assert due.year * 12 + due.month == start.year * 12 + start.month + months
    assert due.day == min(start.day, calendar.monthrange(due.year, due.month)[1])


@given(first=DATES, second=DATES, months=st.integers(1, 36))
def test_a_months_due_date_is_monotonic_in_the_receipt_date(
    first: date, second: date, months: int
) -> None:
    """A later receipt is never due earlier."""
    early, late = sorted((first, second))
    period = Period(months, Unit.MONTHS)
    assert period.after(early) <= period.after(late)


@given(start=NEAR, amount=st.integers(1, 60), holidays=HOLIDAYS)
def test_business_days_land_on_business_days_and_grow_with_the_amount(
    start: date, amount: int, holidays: frozenset[date]
) -> None:
    """A business-day result is a Mon-Fri non-holiday, strictly later for one more day."""
    due = Period(amount, Unit.BUSINESS_DAYS).after(start, holidays)
    assert due.weekday() < 5 and due not in holidays
    assert start < due < Period(amount + 1, Unit.BUSINESS_DAYS).after(start, holidays)


def _regulations() -> st.SearchStrategy[Regulation]:
    """Regulations whose extension outlasts any run of non-business days (weekend + 3 holidays)."""
    extensions = st.one_of(
        st.builds(Period, st.integers(7, 90), st.just(Unit.DAYS)),
        st.builds(Period, st.integers(1, 20), st.just(Unit.BUSINESS_DAYS)),
        st.builds(Period, st.integers(1, 3), st.just(Unit.MONTHS)),
    )
    return st.builds(
        Regulation,
        name=st.just("X"),
        respond=st.builds(Period, st.integers(1, 60), st.sampled_from(list(Unit))),
        extension=extensions,
        roll_forward=st.booleans(),
        holidays=st.frozensets(NEAR, max_size=3),
    )


@given(
    regulation=st.one_of(st.sampled_from(list(BUILTIN_REGULATIONS.values())), _regulations()),
    received=AWARE,
)
def test_extended_to_is_always_after_respond_by(regulation: Regulation, received: datetime) -> None:
    """An extension always gives more time than the original due date."""
    found = clocks(regulation, received, "access")
    assert (
        found.extended_to is not None and found.extended_to > found.respond_by > found.received_on
    )


@given(received=AWARE)
def test_the_receipt_date_is_the_utc_date(received: datetime) -> None:
    """Whatever the offset, clocks count from the UTC calendar date of the receipt."""
    assert clocks(GDPR, received, "access").received_on == received.astimezone(UTC).date()
