"""The finished OpenAPI document: what Litestar generates, completed where it cannot say enough.

`install(app)` (in `create_app`) makes the app serve the finished document, built once on first
use; `document(app)` returns it. Finishing guarantees:

- the schema of every msgspec Struct that refuses unknown fields (`forbid_unknown_fields=True`)
  says `additionalProperties: false`, derived from the Structs themselves, never a hand list
  (and a numeric bound of 0, which Litestar drops, is put back);
- a Struct field whose `Meta(extra_json_schema=...)` carries a whole JSON Schema with `$defs`
  (the segment filter language) is documented by it, its definitions hoisted into
  components/schemas so that recursive references resolve;
- headers: X-Request-ID on every response, Idempotent-Replayed on the successes of writes that
  take an Idempotency-Key, Retry-After on 429 and 503;
- every JSON request body and success body has an example, generated from its schema
  (`openapi_examples`); tests validate each against its schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.types import Method
from litestar.types.internal_types import PathParameterDefinition

from consentry.http.openapi_examples import example_for

JSON = "application/json"
SCHEMAS = "#/components/schemas/"
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "This request's id; problem+json answers carry it as `request_id` and the"
        " access log as `request_id`. Quote it when asking about a request.",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the same"
        " Idempotency-Key: nothing was recorded again.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again (sent with 429; with 503 when the"
        " service can tell).",
        "schema": {"type": "integer", "minimum": 0},
    },
}


class _FinishedOpenAPIPlugin(OpenAPIPlugin):
    """Litestar's OpenAPI plugin, serving the finished document (`finish`)."""

    __slots__ = ()

    def provide_openapi_schema(self) -> dict[str, Any]:
        if not self._openapi_schema:
            self._openapi_schema = finish(self.provide_openapi().to_schema())
        return self._openapi_schema


def install(app: Litestar) -> None:
    """Serve the finished document: the app's OpenAPI plugin becomes `_FinishedOpenAPIPlugin`
    (same slots, one method more), so the document is still built lazily, once."""
    app.plugins.get(OpenAPIPlugin).__class__ = _FinishedOpenAPIPlugin


def document(app: Litestar) -> dict[str, Any]:
    """The finished document of an app built by `create_app`."""
    return app.plugins.get(OpenAPIPlugin).provide_openapi_schema()


def readable_operation_id(
    handler: HTTPRouteHandler, method: Method, path: list[str | PathParameterDefinition]
) -> str:
    """For an operation that names none (a third party's): camelCase from the handler's name,
    after the plugin's name under /v1/plugins/<name>/ (`send` there: chatSend). Every
    first-party operation sets `operation_id=` itself; tests hold those as a contract."""
    parts = [p for p in path if isinstance(p, str)]
    words = re.split(r"[^A-Za-z0-9]+", handler.handler_name)
    if parts[:2] == ["v1", "plugins"] and len(parts) > 2:
        words = [*re.split(r"[^A-Za-z0-9]+", parts[2]), *words]
    if len(handler.http_methods) > 1:
        words = [method.lower(), *words]
    words = [w for w in words if w]
    return words[0].lower() + "".join(w[:1].upper() + w[1:].lower() for w in words[1:])


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, struct in _structs_of(schemas):
        _close(schemas, name, struct)
    components["headers"] = HEADERS
    for op in _operations(doc):
        _headers(op)
        _examples(op, schemas)
    return doc


# -- Structs -----------------------------------------------------------------------------------


def _all_structs(cls: type[msgspec.Struct] = msgspec.Struct) -> Iterator[type[msgspec.Struct]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_structs(sub)


def _structs_of(schemas: dict[str, Any]) -> Iterator[tuple[str, msgspec.inspect.StructType]]:
    """The Struct behind each component schema: same name (its title) and the same fields."""
    by_name: dict[str, list[type[msgspec.Struct]]] = {}
    for cls in _all_structs():
        by_name.setdefault(cls.__name__, []).append(cls)
    for name, schema in list(schemas.items()):
        for cls in by_name.get(schema.get("title", ""), []):
            info = msgspec.inspect.type_info(cls)
            assert isinstance(info, msgspec.inspect.StructType)
            if {f.encode_name for f in info.fields} == set(schema.get("properties", {})):
                yield name, info
                break


def _close(schemas: dict[str, Any], name: str, struct: msgspec.inspect.StructType) -> None:
    schema = schemas[name]
    if struct.forbid_unknown_fields:
        schema["additionalProperties"] = False
    for field in struct.fields:
        extra = _full_schema(field.type)
        if extra is not None:
            schema["properties"][field.encode_name] = _hoisted(schemas, extra)
        _zero_bounds(schema["properties"][field.encode_name], field.type)


_BOUNDS = (
    ("ge", "minimum"),
    ("le", "maximum"),
    ("gt", "exclusiveMinimum"),
    ("lt", "exclusiveMaximum"),
)


def _zero_bounds(prop: dict[str, Any], t: msgspec.inspect.Type) -> None:
    """Litestar drops a numeric bound of 0 (it tests the bound for truth): put it back."""
    if isinstance(t, msgspec.inspect.UnionType):
        for option in t.types:
            _zero_bounds(prop, option)
    elif isinstance(t, msgspec.inspect.Metadata):
        _zero_bounds(prop, t.type)
    elif isinstance(t, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        for attr, key in _BOUNDS:
            if getattr(t, attr) == 0:
                prop.setdefault(key, 0)


def _full_schema(t: msgspec.inspect.Type) -> dict[str, Any] | None:
    if isinstance(t, msgspec.inspect.Metadata) and "$defs" in (t.extra_json_schema or {}):
        return dict(t.extra_json_schema or {})
    return None


def _hoisted(schemas: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Move `$defs` into components/schemas (refused if a name is taken by something else) and
    point the references there; what is left of the schema is returned."""
    defs = _rebased(schema.pop("$defs"))
    for key, definition in defs.items():
        if schemas.setdefault(key, definition) != definition:
            raise ValueError(f"OpenAPI: two different schemas are called {key}")
    rest: dict[str, Any] = _rebased(schema)
    return rest


def _rebased(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: v.replace("#/$defs/", SCHEMAS) if k == "$ref" else _rebased(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rebased(v) for v in value]
    return value


# -- operations --------------------------------------------------------------------------------

_METHODS = {"get", "put", "post", "delete", "patch"}


def _operations(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in doc.get("paths", {}).values():
        for method, op in item.items():
            if method in _METHODS:
                yield op


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _headers(op: dict[str, Any]) -> None:
    idempotent = any(p.get("name") == "Idempotency-Key" for p in op.get("parameters", []))
    for status, response in op.get("responses", {}).items():
        headers = response.setdefault("headers", {})
        headers["X-Request-ID"] = _ref("X-Request-ID")
        if idempotent and status.startswith("2"):
            headers["Idempotent-Replayed"] = _ref("Idempotent-Replayed")
        if status in ("429", "503"):
            headers["Retry-After"] = _ref("Retry-After")


def _examples(op: dict[str, Any], schemas: dict[str, Any]) -> None:
    bodies = [op.get("requestBody", {})]
    bodies += [r for s, r in op.get("responses", {}).items() if s.startswith("2")]
    for body in bodies:
        media = body.get("content", {}).get(JSON)
        if media is not None and "schema" in media:
            media["example"] = example_for(media["schema"], schemas)
