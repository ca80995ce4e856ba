"""The progress of long commands (`audit verify`, `erase`): off a terminal, a line at most once
a second, worded by the command; nothing when quiet."""

from __future__ import annotations

import io

import pytest

from consentry.core.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def describe(done: int, rate: float) -> str:
    return f"{done} done, {rate:.0f}/s"


def test_a_line_at_most_once_a_second_off_a_terminal(clock: Clock) -> None:
    out = io.StringIO()
    with Progress(10, describe, stream=out, clock=clock) as progress:
        for done, at in ((1, 100.5), (2, 101.0), (3, 101.5), (4, 102.2)):
            clock.now = at
            progress(done)
    assert out.getvalue() == "2 done, 2/s\n4 done, 2/s\n"
    assert progress.line() == "4 done, 2/s" and progress.seconds == pytest.approx(2.2)


def test_quiet_says_nothing(clock: Clock) -> None:
    out = io.StringIO()
    with Progress(None, describe, quiet=True, stream=out, clock=clock) as progress:
        clock.now = 105.0
        progress(50)
    assert out.getvalue() == ""
    assert progress.line() == "50 done, 10/s"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_not_lines(clock: Clock) -> None:
    out = Terminal()
    with Progress(4, describe, stream=out, clock=clock) as progress:
        clock.now = 102.0
        progress(4)
    drawn = out.getvalue()
    assert "━━━━" in drawn and "4 done, 2/s" in drawn  # the bar, with the command's words
    assert not drawn.startswith("4 done")
