"""Typed, forgiving reads of a `YNode` tree: each problem becomes a `PolicyIssue`, none raises.

Validation goes on after a problem so that one run reports every problem in the file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable
from enum import Enum
from typing import TypeVar

from consentry.policy._nodes import PolicyIssue, YEntry, YMap, YNode, YScalar, YSeq, child, kind

E = TypeVar("E", bound=Enum)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def listing(choices: Iterable[str]) -> str:
    return ", ".join(sorted(choices)) or "none"


class Checker:
    """Typed reads of a `YNode` tree that record problems instead of raising.

    Every reader takes `node=None` to mean "absent" and then returns None without a new issue
    (the missing key was reported once, by `fields`).
    """

    def __init__(self, file: str, issues: Iterable[PolicyIssue] = ()) -> None:
        self.file = file
        self.issues = list(issues)

    def error(self, line: int, path: str, message: str) -> None:
        self.issues.append(PolicyIssue(self.file, line, path, message))

    def mapping(self, node: YNode | None, path: str) -> YMap | None:
        if node is None or isinstance(node, YMap):
            return node
        self.error(node.line, path, f"expected a mapping, got {kind(node)}")
        return None

    def sequence(self, node: YNode | None, path: str) -> YSeq | None:
        if node is None or isinstance(node, YSeq):
            return node
        self.error(node.line, path, f"expected a list, got {kind(node)}")
        return None

    def fields(
        self,
        node: YNode | None,
        path: str,
        required: Collection[str],
        optional: Collection[str] = (),
    ) -> dict[str, YNode] | None:
        """Entries of a mapping with a fixed set of keys; unknown and missing keys are issues."""
        found = self.mapping(node, path)
        if found is None:
            return None
        allowed = (*required, *optional)
        out: dict[str, YNode] = {}
        for entry in found.entries:
            if entry.key in allowed:
                out[entry.key] = entry.value
            else:
                hint = did_you_mean(entry.key, allowed)
                message = f"unknown key {entry.key!r}{hint}; allowed: {listing(allowed)}"
                self.error(entry.line, child(path, entry.key), message)
        for key in required:
            if key not in out:
                self.error(found.line, path, f"missing required key {key!r}")
        return out

    def string(self, node: YNode | None, path: str) -> str | None:
        """A non-empty string; a plain `no`, `1.0` or `2024-01-01` is taken as written."""
        if node is None:
            return None
        if not isinstance(node, YScalar) or node.value is None or node.text.strip() == "":
            blank = isinstance(node, YScalar) and isinstance(node.value, str)
            got = "an empty string" if blank else kind(node)
            self.error(node.line, path, f"expected a non-empty string, got {got}")
            return None
        return node.value if isinstance(node.value, str) else node.text

    def boolean(self, node: YNode | None, path: str) -> bool | None:
        if node is None:
            return None
        if isinstance(node, YScalar) and isinstance(node.value, bool):
            return node.value
        self.error(node.line, path, f"expected true or false, got {kind(node)}")
        return None

    def integer(self, node: YNode | None, path: str, minimum: int | None = None) -> int | None:
        if node is None:
            return None
        value = node.value if isinstance(node, YScalar) else None
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(node.line, path, f"expected an integer, got {kind(node)}")
            return None
        if minimum is not None and value < minimum:
            self.error(node.line, path, f"must be at least {minimum}, got {value}")
            return None
        return value

    def choice(
        self, node: YNode | None, path: str, allowed: Collection[str], what: str
    ) -> str | None:
        """A string that must be one of `allowed`; the message lists them."""
        value = self.string(node, path)
        if value is None or node is None or value in allowed:
            return value
        hint = did_you_mean(value, allowed)
        self.error(node.line, path, f"unknown {what} {value!r}{hint}; allowed: {listing(allowed)}")
        return None

    def enum(self, node: YNode | None, path: str, cls: type[E], what: str) -> E | None:
        value = self.choice(node, path, [str(m.value) for m in cls], what)
        return None if value is None else cls(value)

    def name(
        self, node: YNode | None, path: str, pattern: re.Pattern[str], what: str
    ) -> str | None:
        value = self.string(node, path)
        if value is None or node is None or pattern.match(value):
            return value
        self.error(node.line, path, f"invalid {what} {value!r} (expected {pattern.pattern})")
        return None

    def key_ok(self, entry: YEntry, path: str, pattern: re.Pattern[str], what: str) -> bool:
        if pattern.match(entry.key):
            return True
        self.error(
            entry.line,
            child(path, entry.key),
            f"invalid {what} {entry.key!r} (expected {pattern.pattern})",
        )
        return False

    def strings(
        self,
        node: YNode | None,
        path: str,
        what: str,
        known: Collection[str] | None = None,
        pattern: re.Pattern[str] | None = None,
        nonempty: bool = False,
    ) -> list[str] | None:
        """A list of distinct strings, each matching `pattern` and declared in `known` if given."""
        found = self.sequence(node, path)
        if found is None:
            return None
        if nonempty and not found.items:
            self.error(found.line, path, f"expected at least one {what}")
        out: list[str] = []
        for i, item in enumerate(found.items):
            at = child(path, i)
            value = (
                self.name(item, at, pattern, what)
                if pattern
                else self.reference(item, at, known, what)
            )
            if pattern and value is not None:
                value = self.reference(item, at, known, what)
            if value is not None and value in out:
                self.error(item.line, at, f"duplicate {what} {value!r}")
            elif value is not None:
                out.append(value)
        return out

    def reference(
        self, node: YNode | None, path: str, known: Collection[str] | None, what: str
    ) -> str | None:
        """A name that must be declared elsewhere (`known`; None skips the check after errors)."""
        value = self.string(node, path)
        if value is None or node is None or known is None or value in known:
            return value
        hint = did_you_mean(value, known)
        self.error(node.line, path, f"unknown {what} {value!r}{hint}; declared: {listing(known)}")
        return None
