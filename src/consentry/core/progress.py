"""Progress of a long command on standard error: a bar on a terminal, otherwise a line at most
once a second (what a log or a pipe keeps)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

Describe = Callable[[int, float], str]  # (done so far, per second) -> the line


class Progress:
    """Call it with the count done so far; `line()` says where things stand. Use it as a
    context manager: the bar (on a terminal) starts and stops with the block."""

    def __init__(
        self,
        total: int | None,
        describe: Describe,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self._describe = describe
        self._quiet = quiet
        self._stream = sys.stderr if stream is None else stream
        self._clock = clock
        self._start = self._last = clock()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if not self._quiet and self._stream.isatty():
            from rich.console import Console  # only on a terminal: rich is slow to import
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            columns = (BarColumn(), TextColumn("{task.description}"), TimeRemainingColumn())
            self._bar = Bar(*columns, console=Console(file=self._stream))
            self._bar.start()
            self._task = self._bar.add_task(self.line(), total=self.total)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __call__(self, done: int) -> None:
        self.done = done
        if self._bar is not None:
            self._bar.update(self._task, completed=done, description=self.line())
            return
        now = self._clock()
        if self._quiet or now - self._last < 1.0:
            return
        self._last = now
        print(self.line(), file=self._stream, flush=True)

    @property
    def seconds(self) -> float:
        return self._clock() - self._start

    def rate(self) -> float:
        """Done per second so far."""
        return self.done / max(self.seconds, 1e-9)

    def line(self) -> str:
        return self._describe(self.done, self.rate())
