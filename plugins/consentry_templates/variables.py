"""What a template may read, and the strict check of a template against it.

A template sees three objects:

- `customer`: the customer's attributes, only those the gate's view for the template's
  capability holds (their data categories are used by the capability's purposes);
- `contact`: the customer's identities (email, phone), on the same terms; `templates.render`
  acts for `personalization`, which does not use `contact`, so it is always empty there;
- `company`: the policy's controller: `name`, `contact`, `policy_url`.

The vocabulary of a capability is everything it could ever see: the policy's declared attributes
(and identity kinds) in its purposes' categories, plus the company fields. A strict template
may use nothing else: each other variable is reported with its line. Undeclared attributes
(the policy's `unknown_attributes`) can reach a lax template but never pass the strict check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import liquid
from liquid.static_analysis import Variable

from consentry.plugins import Policy, SubjectView

COMPANY_FIELDS = ("name", "contact", "policy_url")
ROOTS = ("customer", "contact", "company")


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Every name a capability's templates could ever read, and why others are refused."""

    capability: str
    purposes: tuple[str, ...]
    categories: frozenset[str]
    attributes: frozenset[str]  # declared attributes in an allowed category
    identities: frozenset[str]  # identity kinds in an allowed category
    withheld: Mapping[str, str]  # declared attribute or identity outside them -> its category

    @classmethod
    def of(cls, policy: Policy, capability: str) -> Vocabulary:
        purposes = policy.gates.get(capability, ())
        categories = frozenset(c for p in purposes for c in policy.purposes[p].categories)
        withheld = {f"customer.{a}": c for a, c in policy.attributes.items() if c not in categories}
        withheld.update(
            {f"contact.{k}": c for k, c in policy.identities.items() if c not in categories}
        )
        return cls(
            capability,
            purposes,
            categories,
            frozenset(a for a, c in policy.attributes.items() if c in categories),
            frozenset(k for k, c in policy.identities.items() if c in categories),
            withheld,
        )

    def names(self) -> list[str]:
        return sorted(
            [
                *(f"customer.{a}" for a in self.attributes),
                *(f"contact.{k}" for k in self.identities),
                *(f"company.{f}" for f in COMPANY_FIELDS),
            ]
        )


@dataclass(frozen=True, slots=True)
class Finding:
    """A variable a strict template may not use, where it is, and why."""

    variable: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.variable} (line {self.line}): {self.why}"


def _line(source: str, index: int) -> int:
    return source.count("\n", 0, max(index, 0)) + 1


def _judge(var: Variable, vocabulary: Vocabulary) -> str | None:
    """Why `var` may not be read by a strict template, or None when it may."""
    segments = var.segments
    root = segments[0]
    if root not in ROOTS:
        return f"unknown variable; a template may read {', '.join(ROOTS)}"
    if len(segments) == 1:
        return None  # the whole object: only what the view allows is in it
    key = segments[1]
    if not isinstance(key, str):
        return "a computed lookup cannot be checked; name the field"
    if key.startswith("_"):
        return "private names are never readable"
    name = f"{root}.{key}"
    if root == "company":
        return None if key in COMPANY_FIELDS else f"company has {', '.join(COMPANY_FIELDS)}"
    known = vocabulary.attributes if root == "customer" else vocabulary.identities
    if key in known:
        return None
    if name in vocabulary.withheld:
        purposes = ", ".join(vocabulary.purposes) or "no purpose"
        return (
            f"category '{vocabulary.withheld[name]}' is not used by {purposes}, so"
            f" {vocabulary.capability} never sees it"
        )
    return "not an attribute declared in the policy" if root == "customer" else "unknown identity"


def strict_findings(
    template: liquid.BoundTemplate, source: str, vocabulary: Vocabulary
) -> list[Finding]:
    """Every variable reference outside the vocabulary, in source order."""
    analysis = template.analyze()
    findings = []
    for refs in analysis.globals.values():
        for var in refs:
            why = _judge(var, vocabulary)
            if why is not None:
                findings.append(Finding(str(var), _line(source, var.span.index), why))
    return sorted(findings, key=lambda f: (f.line, f.variable))


def referenced_fields(template: liquid.BoundTemplate) -> frozenset[str]:
    """`customer.x` / `contact.x` names a template reads (for the preview's report)."""
    found = set()
    for refs in template.analyze().globals.values():
        for var in refs:
            segs = var.segments
            if segs[0] in ("customer", "contact") and len(segs) > 1 and isinstance(segs[1], str):
                found.add(f"{segs[0]}.{segs[1]}")
    return frozenset(found)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """JSON-shaped data only: nothing with Python behaviour reaches a template, and no key
    that starts with `_` (private names are never readable)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {
            str(k): v if v.__class__ in _SCALARS else _plain(v)
            for k, v in value.items()
            if not str(k).startswith("_")
        }
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def company_of(policy: Policy) -> dict[str, str]:
    return {f: str(policy.controller.get(f, "")) for f in COMPANY_FIELDS}


def render_data(view: SubjectView, company: Mapping[str, str]) -> dict[str, Any]:
    """The render context for one customer: exactly what the gate's view holds."""
    return {
        "customer": _plain(view.attributes),
        "contact": _plain(view.identities),
        "company": dict(company),
    }


def unavailable(
    fields: Iterable[str], view: SubjectView, policy: Policy
) -> tuple[list[str], list[str]]:
    """Of the fields a template reads: (missing: allowed but this customer has none,
    withheld: their category is outside the view, so they render empty or as the fallback)."""
    missing, withheld = [], []
    for name in sorted(fields):
        root, _, key = name.partition(".")
        if root == "customer":
            present = key in view.attributes
            category = policy.category_of(key)
        else:
            present = key in view.identities
            category = policy.identities.get(key)
        if present:
            continue
        if category is None or category not in view.categories:
            withheld.append(name)
        else:
            missing.append(name)
    return missing, withheld
