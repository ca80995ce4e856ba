"""How a setting's raw value (environment text, or a TOML value) becomes its annotated type.

Each converter raises ValueError naming what it takes ("a whole number"); `Spec.convert` in
`consentry.settings` puts it in a message that names where the value came from.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal


def converter_for(kind: Any) -> Callable[[object], Any] | None:
    """The converter for an annotated type: str, Path, int, float, bool or a Literal."""
    return _CONVERTERS.get(kind) or _choice(kind)


def _to_str(raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError("text")
    return raw


def _to_path(raw: object) -> Path:
    return Path(_to_str(raw))


def _to_int(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError("a whole number")
    try:
        return int(raw)
    except ValueError:
        raise ValueError("a whole number") from None


def _to_float(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("a number")
    try:
        return float(raw)
    except ValueError:
        raise ValueError("a number") from None


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _to_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    word = raw.strip().lower() if isinstance(raw, str) else ""
    if word not in _TRUE | _FALSE:
        raise ValueError("true or false (also 1/0, yes/no, on/off)")
    return word in _TRUE


def _choice(kind: Any) -> Callable[[object], Any] | None:
    """A converter for `Literal["a", "b"]`: one of the values, named when refused."""
    if typing.get_origin(kind) is not Literal:
        return None
    allowed = typing.get_args(kind)

    def convert(raw: object) -> Any:
        if raw not in allowed:
            raise ValueError("one of " + ", ".join(map(str, allowed)))
        return raw

    return convert


_CONVERTERS: dict[Any, Callable[[object], Any]] = {
    str: _to_str,
    Path: _to_path,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
}
