"""Every field error of a request body at once, each naming the allowed values where there is a
set of them (msgspec, like the framework, stops at the first error; no litestar here).

`field_errors(value, type)` walks decoded JSON against the wire type: objects field by field
(missing required fields and unknown fields included), arrays item by item, and at each leaf
lets msgspec judge, so the rules are exactly those the request was refused by. Paths are written
as the framework writes them: `decisions[0].decision`, `scopes[1]`.
"""

from __future__ import annotations

import enum
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec

_ABSENT = (type(None), msgspec.UnsetType)  # union arms that stand for "no value"
MAX_ERRORS = 50  # a body of ten thousand bad items does not answer with ten thousand errors


def field_errors(value: Any, tp: Any) -> list[tuple[str, str]]:
    """(field, detail) for each error of `value` as `tp`, in document order; [] if valid."""
    out: list[tuple[str, str]] = []
    _collect(value, tp, "", out)
    return out[:MAX_ERRORS]


def allowed_values(tp: Any) -> list[str] | None:
    """The values a Literal or Enum type (optional or annotated) takes, else None."""
    base = _strip(tp)
    if get_origin(base) is Literal:
        return [str(v) for v in get_args(base)]
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return [str(m.value) for m in base]
    if _is_union(base):
        arms = [allowed_values(a) for a in get_args(base) if a not in _ABSENT]
        return arms[0] if len(arms) == 1 else None
    return None


def not_one_of(value: Any, allowed: list[str]) -> str:
    shown = f"'{value}'" if isinstance(value, str) else msgspec.json.encode(value).decode()
    return f"{shown[:100]} is not one of: {', '.join(allowed)}"


def _collect(value: Any, tp: Any, path: str, out: list[tuple[str, str]]) -> None:
    if len(out) >= MAX_ERRORS:
        return
    try:
        msgspec.convert(value, tp, strict=False)
        return
    except (msgspec.ValidationError, TypeError) as exc:
        message = str(exc).split(" - at `$", 1)[0]
    base = _strip(tp)
    found = len(out)
    if _is_union(base) and value is not None:
        arms = [a for a in get_args(base) if a not in _ABSENT]
        if len(arms) == 1:
            _collect(value, arms[0], path, out)
            return
    elif isinstance(base, type) and issubclass(base, msgspec.Struct) and isinstance(value, dict):
        _struct(value, base, path, out)
    elif get_origin(base) in (list, set, frozenset) and isinstance(value, list):
        (item,) = get_args(base) or (Any,)
        for i, v in enumerate(value):
            _collect(v, item, f"{path}[{i}]", out)
        _shape(value, tp, list[Any], path, out)
    elif get_origin(base) is dict and isinstance(value, dict):
        _key, item = get_args(base) or (Any, Any)
        for k, v in value.items():
            _collect(v, item, _join(path, str(k)), out)
        _shape(value, tp, dict[Any, Any], path, out)
    if len(out) == found:  # a leaf, or nothing more precise was found inside
        allowed = allowed_values(tp)
        detail = not_one_of(value, allowed) if allowed else message
        out.append((path or "body", detail))


def _struct(value: dict[str, Any], cls: type[msgspec.Struct], path: str, out: list[Any]) -> None:
    known = set()
    for f in msgspec.structs.fields(cls):
        known.add(f.encode_name)
        if f.encode_name in value:
            _collect(value[f.encode_name], f.type, _join(path, f.encode_name), out)
        elif f.required:
            out.append((_join(path, f.encode_name), "required, but missing"))
    if cls.__struct_config__.forbid_unknown_fields:
        for name in value:
            if name not in known:
                where = _join(path, name)
                out.append((where, f"unknown field; allowed: {', '.join(sorted(known))}"))


def _shape(value: Any, tp: Any, loose: Any, path: str, out: list[Any]) -> None:
    """The container's own constraints (e.g. its length), whatever its items."""
    metas = get_args(tp)[1:] if get_origin(tp) is Annotated else ()
    if not metas:
        return
    try:
        msgspec.convert(value, Annotated[(loose, *metas)], strict=False)
    except msgspec.ValidationError as exc:
        out.append((path or "body", str(exc).split(" - at `$", 1)[0]))


def _strip(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
