"""The sandbox: Liquid environments that keep untrusted templates inert and bounded.

What a template can reach is only the plain data it is given (dicts, lists, strings, numbers;
see `variables.render_data`, which also drops keys starting with `_`): python-liquid resolves
`a.b` as `a["b"]`, never as a Python attribute, so `x.__class__` is just a missing key. There
is no loader: `include` and `render` are removed, so a template cannot read a file (or anything
else) by name. Nothing can import or call Python.

Limits stop a template that loops or grows without bound, each with an error that names it:
loop iterations (in one loop nest, and in all loops of a render), output size, size of
`assign`/`capture` variables, context depth, and, for filters (which python-liquid does not
limit), the size of what they are given or make; a wall-clock deadline is checked at every
filter call and loop start. `html` templates autoescape every value (the `safe` filter is
removed, so customer data cannot be marked safe); `text` ones do not escape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sized
from contextvars import ContextVar
from dataclasses import dataclass
from io import StringIO
from typing import Any, ClassVar, TextIO, cast

import liquid
from liquid.exceptions import (
    ContextDepthError,
    FilterArgumentError,
    LiquidError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
)
from liquid.output import LimitedStringIO
from markupsafe import Markup

KINDS = ("html", "text")
MAX_SOURCE = 64 * 1024  # characters of template source (body or subject)
LOOP_ITERATIONS = 10_000  # one loop, nested loops multiplied (python-liquid's own limit)
TOTAL_ITERATIONS = 50_000  # every loop of one render added up (sequential loops too)
OUTPUT_CHARS = 512 * 1024
LOCAL_NAMESPACE_BYTES = 256 * 1024
CONTEXT_DEPTH = 10
FILTER_ITEMS = 10_000  # items in a sequence (or a range such as (1..N)) given to a filter
FILTER_CHARS = OUTPUT_CHARS  # characters in a string given to, or made by, a filter
FILTER_INT_BITS = 128  # integers beyond this are refused: no giant arithmetic
RENDER_SECONDS = 0.5  # wall-clock budget, checked at every filter call


@dataclass(slots=True)
class _Budget:
    deadline: float
    iterations: int


_monotonic = time.monotonic
_budget: ContextVar[_Budget | None] = ContextVar("consentry_templates_budget", default=None)


class TemplateLimitError(FilterArgumentError):
    """A filter was handed (or would make) more than the sandbox allows, or time ran out."""


class TotalIterationsError(LoopIterationLimitError):
    """The loops of one render, added up, went past `TOTAL_ITERATIONS`."""


def _spend(iterations: int) -> None:
    """Charge the running render's budget (time, loop iterations); raise when it is spent."""
    budget = _budget.get()
    if budget is None:
        return
    if _monotonic() > budget.deadline:
        raise TemplateLimitError(f"rendering took longer than {RENDER_SECONDS:g} s", token=None)
    budget.iterations -= iterations
    if budget.iterations < 0:
        raise TotalIterationsError(
            f"loop iteration limit reached ({TOTAL_ITERATIONS:,} iterations in all loops)",
            token=None,
        )


class _Output(LimitedStringIO):
    """python-liquid's limited buffer, counting characters instead of encoding every write to
    count UTF-8 bytes (a tenth of a typical render's time)."""

    def write(self, s: str, /) -> int:
        self.size += len(s)
        if self.size > self.limit:
            raise OutputStreamLimitError("output stream limit reached", token=None)
        return StringIO.write(self, s)


class _SafeContext(liquid.RenderContext):
    def get_buffer(self, buf: TextIO | None = None) -> StringIO:
        carry = buf.size if isinstance(buf, LimitedStringIO) else 0
        return _Output(limit=OUTPUT_CHARS - carry)

    def raise_for_loop_limit(self, length: int = 1) -> None:
        super().raise_for_loop_limit(length)  # this loop, times the loops around it
        _spend(length)  # called as each loop starts: the lengths add up to every iteration


class _SafeTemplate(liquid.BoundTemplate):
    context_class = _SafeContext

    def _get_buffer(self) -> StringIO:
        return _Output(limit=OUTPUT_CHARS)


class _Sandboxed(liquid.Environment):
    loop_iteration_limit: ClassVar[int | None] = LOOP_ITERATIONS
    output_stream_limit: ClassVar[int | None] = OUTPUT_CHARS
    local_namespace_limit: ClassVar[int | None] = LOCAL_NAMESPACE_BYTES
    context_depth_limit: ClassVar[int] = CONTEXT_DEPTH
    template_class = _SafeTemplate


_SMALL = frozenset({float, bool, type(None), dict})


def _fits(value: object) -> bool:
    """The fast path of `_too_big`: plain types checked without ABCs."""
    kind = type(value)
    if kind is str or kind is Markup:
        return len(cast(str, value)) <= FILTER_CHARS
    if kind is int:
        return cast(int, value).bit_length() <= FILTER_INT_BITS
    if kind is list:
        return len(cast(list[Any], value)) <= FILTER_ITEMS
    return kind in _SMALL or _too_big(value) is None


def _too_big(value: object) -> str | None:
    if isinstance(value, str | bytes):
        if len(value) > FILTER_CHARS:
            return f"text of {len(value):,} characters (limit {FILTER_CHARS:,})"
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if value.bit_length() > FILTER_INT_BITS:
            return f"an integer of more than {FILTER_INT_BITS} bits"
        return None
    if isinstance(value, Sized) and not isinstance(value, Mapping) and len(value) > FILTER_ITEMS:
        return f"a sequence of {len(value):,} items (limit {FILTER_ITEMS:,})"
    return None


def _check(name: str, value: object) -> None:
    why = _too_big(value)
    if why is not None:
        raise TemplateLimitError(f"filter '{name}' refused {why}", token=None)


# Builtins that take constant time and give back one of their inputs (or its length): nothing
# to guard, and `default` is in almost every output statement.
_CONSTANT_TIME = frozenset({"default", "size", "first", "last"})


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with its inputs, output and the render's deadline checked (at every call)."""
    replacing = name == "replace"

    def guarded(value: object, *args: object, **kwargs: object) -> Any:
        budget = _budget.get()
        if budget is not None and _monotonic() > budget.deadline:
            _spend(0)  # raises: out of time
        if not _fits(value):
            _check(name, value)
        for arg in args:
            if not _fits(arg):
                _check(name, arg)
        if replacing and isinstance(value, str) and len(args) >= 2:
            old, new = str(args[0]), str(args[1])
            grows = (value.count(old) if old else len(value) + 1) * len(new)
            if len(value) + grows > FILTER_CHARS:
                raise TemplateLimitError(
                    f"filter 'replace' would make more than {FILTER_CHARS:,} characters",
                    token=None,
                )
        result = func(value, *args, **kwargs)
        if not _fits(result):
            _check(name, result)
        return result

    # python-liquid reads these markers to pass the context or environment; keep them.
    for marker in ("with_context", "with_environment", "validate"):
        if hasattr(func, marker):
            setattr(guarded, marker, getattr(func, marker))
    return guarded


@dataclass(frozen=True, slots=True)
class Sandbox:
    """One environment per kind; the same filters (builtin + contributed) in both."""

    environments: Mapping[str, liquid.Environment]

    @classmethod
    def build(cls, filters: Mapping[str, Callable[..., Any]] = {}) -> Sandbox:
        envs: dict[str, liquid.Environment] = {}
        for kind in KINDS:
            env = _Sandboxed(autoescape=kind == "html", strict_filters=True)
            for tag in ("include", "render"):  # no loader, no partials: nothing by name
                env.tags.pop(tag, None)
            env.filters.pop("safe", None)  # every value is escaped in html: no way around it
            for name, func in filters.items():
                env.filters.setdefault(name, func)  # a contributed filter never hides a builtin
            env.filters = {
                name: func if name in _CONSTANT_TIME else _guarded(name, func)
                for name, func in env.filters.items()
            }
            envs[kind] = env
        return cls(envs)

    def parse(self, source: str, kind: str) -> liquid.BoundTemplate:
        """Parse `source`; raises `LiquidError` (syntax, unknown tag) with its position."""
        return self.environments[kind].from_string(source)

    def filter_names(self) -> frozenset[str]:
        return frozenset(self.environments["text"].filters)


class Budget:
    """`with Budget():` around a render arms its time and total-iterations budget (checked
    at every filter call and every loop start)."""

    def __enter__(self) -> None:
        self._token = _budget.set(_Budget(time.monotonic() + RENDER_SECONDS, TOTAL_ITERATIONS))

    def __exit__(self, *exc: object) -> None:
        _budget.reset(self._token)


def line_of(error: LiquidError) -> int | None:
    """The 1-based line an error points at, when python-liquid knows it."""
    token = error.token
    if token is None or token.start_index < 0:
        return None
    return token.source.count("\n", 0, token.start_index) + 1


_LIMITS: dict[type[LiquidError], str] = {
    LoopIterationLimitError: f"{LOOP_ITERATIONS:,} iterations in a loop and the loops around it",
    OutputStreamLimitError: f"{OUTPUT_CHARS:,} characters of output",
    LocalNamespaceLimitError: f"{LOCAL_NAMESPACE_BYTES:,} bytes of assigned variables",
    ContextDepthError: f"context depth {CONTEXT_DEPTH}",
}


def message_of(error: BaseException) -> str:
    """A one-line message (python-liquid's own str() is a multi-line source excerpt)."""
    if isinstance(error, LiquidError):
        text = str(error.message) if error.message is not None else type(error).__name__
        limit = _LIMITS.get(type(error))
        text = f"{text} (limit: {limit})" if limit else text
        line = line_of(error)
        return f"line {line}: {text}" if line else text
    return f"{type(error).__name__}: {error}"
