"""The segment filter language: JSON in, a validated tree out (no SQL here; see `sql`).

Grammar (every node is a JSON object; unknown keys are refused):

    filter    := {"and": [filter, ...]}             every one (an empty list: everyone)
               | {"or": [filter, ...]}              at least one (1 or more items)
               | {"not": filter}
               | condition                         on a customer attribute ("attr")
               | {"events": events, "op": CMP, "value": int >= 0}
    events    := {"name": event name, "where": [condition on "prop", ...], "last_days": int}
                 (where and last_days optional)
    condition := {"attr" | "prop": name, "op": CMP, "value": string | number | boolean}
               | {"attr" | "prop": name, "op": "in", "value": [string | number, ...]}
               | {"attr" | "prop": name, "op": "exists"}
               | {"attr" | "prop": name, "op": "within_days" | "older_than_days", "value": int}
               | {"attr" | "prop": name, "op": "before" | "after", "value": ISO-8601 time}
    CMP       := "=" | "!=" | "<" | "<=" | ">" | ">="   (booleans: "=" and "!=" only)

A comparison holds only when the value is there and of the compared type (a string against a
string, a number against a number): a missing attribute matches neither `= x` nor `!= x`, and
`not` is the exact complement. Times are ISO-8601 strings (date, or date and time, with `Z` or
`+HH:MM`; without a zone: UTC).

Policy rules: an attribute must have a data category (unknown attributes follow the policy's
`unknown_attributes`), must not be sensitive (sensitive attributes are encrypted and matchable
only by equality through a blind index, which custom attributes do not have), and its category
must be one the segment's purpose uses. Events count as `behavior` data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.plugins import Invalid, Policy
from consentry.plugins.query import And, Condition, EventCount, Node, Not, Or, Scalar

CAPABILITY = "segments.membership"
EVENTS_CATEGORY = "behavior"

COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
TIME_WINDOWS = ("within_days", "older_than_days")
TIME_POINTS = ("before", "after")
OPS = (*COMPARISONS, "in", "exists", *TIME_WINDOWS, *TIME_POINTS)

MAX_DEPTH = 12
MAX_NODES = 200
MAX_IN_VALUES = 1000
MAX_VALUES = 5000  # bound values in one filter, all `in` lists together
MAX_STRING = 1000
MAX_DAYS = 36_500
MAX_COUNT = 1_000_000_000
INT_LIMIT = 2**63 - 1

ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,99}$")
TIME_WITH_ZONE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$"

Number = int | float


# -- the grammar as JSON Schema (2020-12) --------------------------------------------------------
# What the API documents for `filter`. It says what the parser above accepts syntactically; the
# limits on depth and size, and the policy rules (categories, sensitive attributes, the purpose),
# are checked by `parse` only.


def _condition(key: str, name: re.Pattern[str]) -> dict[str, Any]:
    string = {"type": "string", "maxLength": MAX_STRING, "pattern": "^[^\\x00]*$"}
    number = {
        "anyOf": [
            {"type": "integer", "minimum": -INT_LIMIT, "maximum": INT_LIMIT},
            {"type": "number", "not": {"type": "integer"}},
        ]
    }
    days = {"type": "integer", "minimum": 1, "maximum": MAX_DAYS}
    time = {"type": "string", "maxLength": 40, "pattern": TIME_WITH_ZONE, "format": "date-time"}

    def shape(op: dict[str, Any], value: dict[str, Any] | None = None) -> dict[str, Any]:
        props = {key: {"type": "string", "pattern": name.pattern}, "op": op}
        if value is not None:
            props["value"] = value
        return {
            "type": "object",
            "properties": props,
            "required": sorted(props),
            "additionalProperties": False,
        }

    return {
        "oneOf": [
            shape({"enum": ["=", "!="]}, {"anyOf": [string, number, {"type": "boolean"}]}),
            shape({"enum": ["<", "<=", ">", ">="]}, {"anyOf": [string, number]}),
            shape(
                {"const": "in"},
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_IN_VALUES,
                    "items": {"anyOf": [string, number]},
                },
            ),
            shape({"const": "exists"}),
            shape({"enum": list(TIME_WINDOWS)}, days),
            shape({"enum": list(TIME_POINTS)}, time),
        ]
    }


def _filter_json_schema() -> dict[str, Any]:
    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/$defs/{name}"}

    def only(**props: Any) -> dict[str, Any]:
        return {"type": "object", "properties": props, "additionalProperties": False}

    nodes = ["SegmentAnd", "SegmentOr", "SegmentNot", "SegmentCondition", "SegmentEventCount"]
    return {
        "$ref": "#/$defs/SegmentFilter",
        "$defs": {
            "SegmentFilter": {
                "description": "A segment filter: and, or, not, a condition on a customer"
                f" attribute, or a count of events. At most {MAX_DEPTH} levels deep and"
                f" {MAX_NODES} parts; attributes must be ones the purpose may use (see the"
                " policy).",
                "oneOf": [ref(n) for n in nodes],
            },
            "SegmentAnd": {
                **only(),
                "properties": {"and": {"type": "array", "items": ref("SegmentFilter")}},
                "required": ["and"],
                "description": "Every filter holds (an empty list: everyone).",
            },
            "SegmentOr": {
                **only(),
                "properties": {
                    "or": {"type": "array", "minItems": 1, "items": ref("SegmentFilter")}
                },
                "required": ["or"],
                "description": "At least one filter holds.",
            },
            "SegmentNot": {
                **only(),
                "properties": {"not": ref("SegmentFilter")},
                "required": ["not"],
                "description": "The exact complement of the filter.",
            },
            "SegmentCondition": {
                "description": "A condition on a customer attribute. A comparison holds only"
                " when the value is there and of the compared type.",
                **_condition("attr", ATTRIBUTE_NAME),
            },
            "SegmentEventCount": {
                **only(
                    events=ref("SegmentEvents"),
                    op={"enum": list(COMPARISONS)},
                    value={"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
                ),
                "required": ["events", "op", "value"],
                "description": "How many of the customer's events match, compared with a number.",
            },
            "SegmentEvents": {
                **only(
                    name={"type": "string", "pattern": EVENT_NAME.pattern},
                    where={"type": "array", "items": ref("SegmentPropertyCondition")},
                    last_days={"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
                ),
                "required": ["name"],
                "description": "Which events count: by name, properties and age.",
            },
            "SegmentPropertyCondition": {
                "description": "A condition on an event property.",
                **_condition("prop", PROPERTY_NAME),
            },
        },
    }


@dataclass(frozen=True, slots=True)
class Segment:
    """A validated filter for one purpose."""

    purpose: str
    root: Node


FILTER_JSON_SCHEMA: dict[str, Any] = _filter_json_schema()


# -- validation -------------------------------------------------------------------------------


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_purpose(policy: Policy, purpose: Any, field: str = "purpose") -> str:
    gated = policy.gates.get(CAPABILITY, ())
    if not isinstance(purpose, str) or purpose not in gated:
        allowed = ", ".join(gated) or "nothing (the policy has no gate for it)"
        shown = purpose if isinstance(purpose, str) else _type(purpose)
        raise Invalid(
            f"purpose '{shown}' is not one segments may use; the policy gates"
            f" {CAPABILITY} to {allowed}",
            field=field,
        )
    return purpose


class _Parser:
    def __init__(self, policy: Policy, purpose: str) -> None:
        self.policy = policy
        self.purpose = purpose
        self.categories = policy.purposes[purpose].categories
        self.nodes = 0
        self.values = 0

    # -- nodes -------------------------------------------------------------------------------

    def node(self, raw: Any, path: str, depth: int) -> Node:
        where = path or "filter"
        if depth > MAX_DEPTH:
            raise Invalid(f"{where}: filters nest at most {MAX_DEPTH} levels deep", field=where)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Invalid(f"{where}: a filter has at most {MAX_NODES} parts", field=where)
        if not isinstance(raw, dict):
            raise Invalid(
                f'{where}: expected an object such as {{"attr": ..., "op": ..., "value":'
                f' ...}} or {{"and": [...]}}, got {_type(raw)}',
                field=where,
            )
        if "and" in raw or "or" in raw:
            key = "and" if "and" in raw else "or"
            self._only(raw, {key}, path)
            items = raw[key]
            if not isinstance(items, list):
                raise Invalid(
                    f"{_at(path, key)}: expected a list of filters, got {_type(items)}",
                    field=_at(path, key),
                )
            if key == "or" and not items:
                raise Invalid(
                    f"{_at(path, key)}: 'or' needs at least one filter", field=_at(path, key)
                )
            parsed = tuple(
                self.node(item, f"{_at(path, key)}[{i}]", depth + 1) for i, item in enumerate(items)
            )
            return And(parsed) if key == "and" else Or(parsed)
        if "not" in raw:
            self._only(raw, {"not"}, path)
            return Not(self.node(raw["not"], _at(path, "not"), depth + 1))
        if "events" in raw:
            return self.events(raw, path)
        if "attr" in raw:
            return self.condition(raw, path, "attr")
        keys = ", ".join(sorted(map(str, raw))) or "none"
        raise Invalid(
            f"{where}: expected one of 'and', 'or', 'not', 'attr' or 'events' (keys given:"
            f" {keys[:200]})",
            field=where,
        )

    def _only(self, raw: dict[Any, Any], allowed: set[str], path: str) -> None:
        extra = sorted(str(k) for k in raw if k not in allowed)
        if extra:
            where = _at(path, extra[0][:100])
            raise Invalid(
                f"{where}: unexpected key; this part takes {', '.join(sorted(allowed))}",
                field=where,
            )

    def events(self, raw: dict[Any, Any], path: str) -> EventCount:
        self._only(raw, {"events", "op", "value"}, path)
        spec = raw["events"]
        epath = _at(path, "events")
        if not isinstance(spec, dict):
            raise Invalid(f"{epath}: expected an object, got {_type(spec)}", field=epath)
        self._only(spec, {"name", "where", "last_days"}, epath)
        if EVENTS_CATEGORY not in self.categories:
            raise Invalid(
                f"{epath}: events are {EVENTS_CATEGORY} data, which purpose '{self.purpose}'"
                f" does not use (it uses {', '.join(self.categories)})",
                field=epath,
            )
        name = spec.get("name")
        if not isinstance(name, str) or not EVENT_NAME.match(name):
            raise Invalid(
                f"{_at(epath, 'name')}: an event name is lowercase letters, digits, '_' and '.',"
                " starting with a letter, at most 100 characters",
                field=_at(epath, "name"),
            )
        where_raw = spec.get("where", [])
        wpath = _at(epath, "where")
        if not isinstance(where_raw, list):
            raise Invalid(f"{wpath}: expected a list of conditions", field=wpath)
        where = []
        for i, item in enumerate(where_raw):
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise Invalid(f"{wpath}: a filter has at most {MAX_NODES} parts", field=wpath)
            if not isinstance(item, dict) or "prop" not in item:
                raise Invalid(
                    f'{wpath}[{i}]: expected {{"prop": ..., "op": ..., "value": ...}}',
                    field=f"{wpath}[{i}]",
                )
            where.append(self.condition(item, f"{wpath}[{i}]", "prop"))
        last_days = spec.get("last_days")
        if last_days is not None:
            last_days = self._days(last_days, _at(epath, "last_days"))
        op = raw.get("op")
        if op not in COMPARISONS:
            raise Invalid(
                f"{_at(path, 'op')}: an event count compares with one of {', '.join(COMPARISONS)}",
                field=_at(path, "op"),
            )
        value = raw.get("value")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise Invalid(
                f"{_at(path, 'value')}: an event count is compared with a whole number from 0"
                f" to {MAX_COUNT}",
                field=_at(path, "value"),
            )
        return EventCount(name, tuple(where), last_days, op, value)

    # -- conditions --------------------------------------------------------------------------

    def condition(self, raw: dict[Any, Any], path: str, source: str) -> Condition:
        op = raw.get("op")
        self._only(raw, {source, "op"} if op == "exists" else {source, "op", "value"}, path)
        name = self._name(raw[source], _at(path, source), source)
        opath, vpath = _at(path, "op"), _at(path, "value")
        if op not in OPS:
            raise Invalid(f"{opath}: op must be one of {', '.join(OPS)}", field=opath)
        if op == "exists":
            return Condition(source, name, op, None)
        if "value" not in raw:
            raise Invalid(f"{vpath}: op '{op}' needs a value", field=vpath)
        value = raw["value"]
        if op in COMPARISONS:
            scalar = self._scalar(value, vpath)
            if isinstance(scalar, bool) and op not in ("=", "!="):
                raise Invalid(f"{vpath}: booleans compare only with '=' and '!='", field=vpath)
            return Condition(source, name, op, scalar)
        if op == "in":
            if not isinstance(value, list) or not value:
                raise Invalid(f"{vpath}: 'in' takes a non-empty list of values", field=vpath)
            if len(value) > MAX_IN_VALUES:
                raise Invalid(f"{vpath}: 'in' takes at most {MAX_IN_VALUES} values", field=vpath)
            items = tuple(self._scalar(v, f"{vpath}[{i}]") for i, v in enumerate(value))
            for i, item in enumerate(items):
                if isinstance(item, bool):
                    raise Invalid(
                        f"{vpath}[{i}]: 'in' takes strings and numbers; use '=' for booleans",
                        field=f"{vpath}[{i}]",
                    )
            self.values += len(items)
            if self.values > MAX_VALUES:
                raise Invalid(
                    f"{vpath}: a filter takes at most {MAX_VALUES} values in all", field=vpath
                )
            return Condition(source, name, op, items)
        if op in TIME_WINDOWS:
            return Condition(source, name, op, self._days(value, vpath))
        return Condition(source, name, op, self._time(value, vpath))

    def _name(self, name: Any, path: str, source: str) -> str:
        if source == "prop":
            if not isinstance(name, str) or not PROPERTY_NAME.match(name):
                raise Invalid(
                    f"{path}: a property name is letters, digits and '_', not starting with a"
                    " digit, at most 64 characters",
                    field=path,
                )
            return name
        if not isinstance(name, str) or not ATTRIBUTE_NAME.match(name):
            raise Invalid(
                f"{path}: an attribute name is lowercase letters, digits and '_', starting with"
                " a letter, at most 64 characters",
                field=path,
            )
        category = self.policy.category_of(name)
        if category is None:
            raise Invalid(
                f"{path}: attribute '{name}' has no data category in the policy (undeclared"
                " attributes are rejected); declare it under 'attributes' in the policy",
                field=path,
            )
        if self.policy.categories[category].sensitive:
            raise Invalid(
                f"{path}: attribute '{name}' is sensitive ({category}): it is stored encrypted"
                " and can be matched only by equality through a blind index, which it does not"
                " have; segments cannot filter on it",
                field=path,
            )
        if category not in self.categories:
            raise Invalid(
                f"{path}: attribute '{name}' is {category} data, which purpose"
                f" '{self.purpose}' does not use (it uses {', '.join(self.categories)})",
                field=path,
            )
        return name

    def _scalar(self, value: Any, path: str) -> Scalar:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            if abs(value) > INT_LIMIT:
                raise Invalid(f"{path}: whole numbers must fit in 64 bits", field=path)
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise Invalid(f"{path}: numbers must be finite", field=path)
            return value
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                raise Invalid(f"{path}: strings have at most {MAX_STRING} characters", field=path)
            if "\x00" in value:
                raise Invalid(f"{path}: strings must not contain NUL (\\u0000)", field=path)
            return value
        raise Invalid(
            f"{path}: expected a string, number or boolean, got {_type(value)}", field=path
        )

    def _days(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
            raise Invalid(
                f"{path}: expected a whole number of days from 1 to {MAX_DAYS}", field=path
            )
        return value

    def _time(self, value: Any, path: str) -> datetime:
        message = f"{path}: expected an ISO-8601 time with a zone, e.g. 2026-01-31T00:00:00Z"
        if not isinstance(value, str) or len(value) > 40:
            raise Invalid(message, field=path)
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(message, field=path) from None
        if when.tzinfo is None:
            raise Invalid(message, field=path)
        return when


def parse(policy: Policy, purpose: Any, raw: Any, *, field: str = "filter") -> Segment:
    """Validate `raw` (decoded JSON) for `purpose`; `Invalid` names the offending part as a path
    (`and[2].value`), prefixed with `field` when given."""
    checked = check_purpose(policy, purpose)
    parser = _Parser(policy, checked)
    try:
        root = parser.node(raw, "", 0)
    except Invalid as exc:
        where = exc.field or ""
        full = f"{field}.{where}" if field and where and where != "filter" else field or where
        raise Invalid(exc.detail, field=full) from None
    return Segment(checked, root)
