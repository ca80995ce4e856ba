"""YAML with line numbers, and the error type every policy file shares.

PyYAML's composer gives nodes that know their line; this module turns them into a small typed
tree (`YScalar`, `YMap`, `YSeq`, every node carrying the line of its key or item), and reports
syntax errors and duplicate keys (which PyYAML would silently accept, keeping the last).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

_YAML = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(_YAML + t for t in ("str", "int", "float", "bool", "null"))
_TEXT_TAGS = frozenset(_YAML + t for t in ("timestamp", "merge", "value"))  # kept as written
_MAX_NODES = 100_000  # a policy is small; this stops alias bombs ("billion laughs")
_MAX_DEPTH = 50  # also stops recursive aliases
_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem in a policy or case file, located by file, line and path."""

    file: str
    line: int
    path: str  # e.g. `purposes.marketing_email.notices[1].version`
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path or '(root)'}: {self.message}"


class PolicyError(Exception):
    """A policy (or case) file is invalid; `issues` lists every problem found, in file order."""

    def __init__(self, issues: Iterable[PolicyIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line))
        super().__init__("\n".join(str(i) for i in self.issues))


Value = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class YScalar:
    value: Value
    text: str  # the scalar as written (without quotes)
    line: int


@dataclass(frozen=True, slots=True)
class YEntry:
    key: str
    line: int
    value: YNode


@dataclass(frozen=True, slots=True)
class YMap:
    entries: tuple[YEntry, ...]
    line: int


@dataclass(frozen=True, slots=True)
class YSeq:
    items: tuple[YNode, ...]
    line: int


YNode = YScalar | YMap | YSeq


def child(path: str, key: str | int) -> str:
    """The path of a mapping key or list index below `path`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _SIMPLE_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def kind(node: YNode) -> str:
    """How a node reads in an error message: 'a mapping', 'a string'..."""
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    return "null" if node.value is None else names[type(node.value)]


def _mark_line(error: Any) -> int:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    return int(mark.line) + 1 if mark is not None else 1


def _syntax_message(error: Any) -> str:
    message = str(error.problem or error.context or "invalid YAML")
    mark = error.context_mark
    if error.problem and error.context and mark is not None:
        message += f" ({error.context} on line {int(mark.line) + 1})"
    return f"YAML syntax error: {message}"


def _reader_line(data: bytes, error: Any) -> int:
    position = int(error.position)
    if error.encoding == "unicode":  # a decoded but forbidden character: position counts chars
        return data.decode("utf-8", "replace")[:position].count("\n") + 1
    return data[:position].count(b"\n") + 1  # an undecodable byte: position counts bytes


def _reader_message(error: Any) -> str:
    char = error.character
    code = char if isinstance(char, int) else ord(char[:1] or "\0")
    hint = "" if error.encoding == "unicode" else " (the file must be UTF-8 text)"
    return f"unreadable character #x{code:04x}: {error.reason}{hint}"


def parse_yaml(data: bytes, file: str) -> tuple[YNode | None, list[PolicyIssue]]:
    """Compose `data` into a typed tree; syntax errors and duplicate keys become issues."""
    try:
        root = yaml.compose(data, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        return None, [PolicyIssue(file, _mark_line(error), "", _syntax_message(error))]
    except yaml.reader.ReaderError as error:
        return None, [PolicyIssue(file, _reader_line(data, error), "", _reader_message(error))]
    except yaml.YAMLError as error:
        return None, [PolicyIssue(file, 1, "", f"YAML error: {error}")]
    except RecursionError:
        return None, [PolicyIssue(file, 1, "", "YAML error: nesting too deep")]
    if root is None:
        return None, [PolicyIssue(file, 1, "", "the file is empty")]
    builder = _Builder(file)
    return builder.build(root, int(root.start_mark.line) + 1, "", 0), builder.issues


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.issues: list[PolicyIssue] = []
        self.count = 0
        self.constructor = yaml.constructor.SafeConstructor()

    def error(self, line: int, path: str, message: str) -> None:
        self.issues.append(PolicyIssue(self.file, line, path, message))

    def build(self, node: Any, line: int, path: str, depth: int) -> YNode | None:
        self.count += 1
        if self.count == _MAX_NODES or depth == _MAX_DEPTH:
            self.error(line, path, "document too large or too deeply nested (recursive alias?)")
        if self.count >= _MAX_NODES or depth >= _MAX_DEPTH:
            return None
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, line, path)
        if node.tag not in (_YAML + "map", _YAML + "seq"):
            self.error(line, path, f"unsupported YAML tag {node.tag}")
            return None
        if isinstance(node, yaml.SequenceNode):
            items = (
                self.build(item, int(item.start_mark.line) + 1, child(path, i), depth + 1)
                for i, item in enumerate(node.value)
            )
            return YSeq(tuple(i for i in items if i is not None), line)
        return self.mapping(node, line, path, depth)

    def scalar(self, node: Any, line: int, path: str) -> YScalar | None:
        text = str(node.value)
        if node.tag in _TEXT_TAGS:
            return YScalar(text, text, line)
        if node.tag not in _PLAIN_TAGS:
            self.error(line, path, f"unsupported YAML tag {node.tag}")
            return None
        try:
            value = self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError):
            self.error(line, path, f"cannot read {text!r} as {node.tag.removeprefix(_YAML)}")
            return None
        return YScalar(value, text, line)

    def mapping(self, node: Any, line: int, path: str, depth: int) -> YMap:
        entries: list[YEntry] = []
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = int(key_node.start_mark.line) + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _YAML + "merge":
                what = "merge keys (<<)" if key_node.tag == _YAML + "merge" else "complex keys"
                self.error(key_line, path, f"{what} are not supported")
                continue
            key = str(key_node.value)
            if key in seen:
                self.error(
                    key_line, child(path, key), f"duplicate key {key!r} (first on line {seen[key]})"
                )
                continue
            seen[key] = key_line
            value = self.build(value_node, key_line, child(path, key), depth + 1)
            if value is not None:
                entries.append(YEntry(key, key_line, value))
        return YMap(tuple(entries), line)
