"""Load a policy file: YAML in, a validated, frozen `Policy` out, or every problem at once.

`load_policy` raises `PolicyError` whose `issues` name file, line and path of each problem, so
`consentry policy check` can print them the way a compiler does. Cross-references (purpose →
category, channel, region; topic and gate → purpose; identity → sensitive category) are checked
after each section is read, whatever the order of sections in the file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from datetime import date
from pathlib import Path

from consentry.domain.deadlines import BUILTIN_REGULATIONS, Period, Regulation, parse_period
from consentry.domain.purposes import (
    ConsentModel,
    DataCategory,
    Policy,
    Purpose,
    Region,
    Retention,
    Topic,
)
from consentry.policy._checker import Checker, listing
from consentry.policy._nodes import PolicyError, PolicyIssue, YNode, YScalar, child, parse_yaml
from consentry.policy._purpose_reader import IDENT, PurposeReader

__all__ = ["PolicyError", "PolicyIssue", "load_policy", "parse_policy"]

CAPABILITY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
REGION = re.compile(r"^[A-Z]{2,}(-[A-Z0-9]{1,3})?$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
REGULATION = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
REGULATION_PERIODS = ("extension", "acknowledge", "opt_out")  # optional; `null` means none
REJECT = "reject"  # unknown_attributes: refuse attributes the policy does not declare
TOP_REQUIRED = (
    "controller", "languages", "categories", "channels", "purposes", "regions", "default_region",
)  # fmt: skip
TOP_OPTIONAL = (
    "identities", "attributes", "unknown_attributes", "topics", "gates", "retention",
    "double_opt_in_ttl_hours", "regulations",
)  # fmt: skip


def load_policy(path: Path) -> Policy:
    """Read and validate the policy at `path`; raise `PolicyError` listing every problem."""
    try:
        data = path.read_bytes()
    except OSError as error:
        issue = PolicyIssue(str(path), 1, "", f"cannot read the file: {error.strerror or error}")
        raise PolicyError([issue]) from error
    return parse_policy(data, str(path))


def parse_policy(data: bytes, file: str = "<policy>") -> Policy:
    """Validate policy YAML given as bytes; `file` names it in error messages."""
    root, issues = parse_yaml(data, file)
    reader = _PolicyReader(Checker(file, issues))
    policy = None if root is None else reader.policy(root, hashlib.sha256(data).hexdigest())
    if reader.ck.issues or policy is None:
        raise PolicyError(reader.ck.issues or [PolicyIssue(file, 1, "", "invalid policy")])
    return policy


class _PolicyReader(PurposeReader):
    def policy(self, root: YNode, digest: str) -> Policy | None:
        f = self.ck.fields(root, "", TOP_REQUIRED, TOP_OPTIONAL)
        if f is None:
            return None
        controller = self.controller(f.get("controller"))
        self.languages = self.list_of(f.get("languages"), "languages", "language", LANGUAGE)
        self.channels = self.list_of(f.get("channels"), "channels", "channel", IDENT)
        self.known["channel"] = None if self.channels is None else set(self.channels)
        self.categories = self.read_categories(f.get("categories"))
        regulations = self.read_regulations(f.get("regulations"))
        regions = self.read_regions(f.get("regions"))
        default_region = self.ck.reference(
            f.get("default_region"), "default_region", self.known["region"], "region"
        )
        identities = self.category_map(f.get("identities"), "identities", "identity", IDENT)
        attributes = self.category_map(
            f.get("attributes"),
            "attributes",
            "attribute",
            ATTRIBUTE,
            taken=self.known["identity"] or (),
        )
        unknown = self.unknown_attributes(f.get("unknown_attributes"))
        purposes = self.read_purposes(f.get("purposes"))
        topics = self.read_topics(f.get("topics"), purposes)
        gates = self.read_gates(f.get("gates"))
        retention = self.read_retention(f.get("retention"))
        ttl = self.ck.integer(
            f.get("double_opt_in_ttl_hours"), "double_opt_in_ttl_hours", minimum=1
        )
        if (
            self.ck.issues
            or self.languages is None
            or self.channels is None
            or default_region is None
        ):
            return None
        return Policy(
            version="sha256:" + digest, controller=controller, languages=self.languages,
            categories=self.categories, attributes=attributes, unknown_attributes=unknown,
            identities=identities, purposes=purposes, channels=self.channels, topics=topics,
            regions=regions, default_region=default_region, gates=gates, retention=retention,
            double_opt_in_ttl_hours=72 if ttl is None else ttl,
            regulations=dict(BUILTIN_REGULATIONS) if regulations is None else regulations,
        )  # fmt: skip

    def controller(self, node: YNode | None) -> dict[str, str]:
        keys = ("name", "contact", "policy_url")
        f = self.ck.fields(node, "controller", keys) or {}
        out = {k: v for k in keys if (v := self.ck.string(f.get(k), f"controller.{k}")) is not None}
        if not out.get("policy_url", "https://").startswith(("https://", "http://")):
            self.ck.error(f["policy_url"].line, "controller.policy_url", "expected an http(s) URL")
        return out

    def list_of(
        self, node: YNode | None, path: str, what: str, pattern: re.Pattern[str]
    ) -> tuple[str, ...] | None:
        names = self.ck.strings(node, path, what, pattern=pattern, nonempty=True)
        return None if names is None else tuple(names)

    def read_categories(self, node: YNode | None) -> dict[str, DataCategory]:
        out: dict[str, DataCategory] = {}
        for e in self.section(node, "categories", IDENT, "category"):
            path = child("categories", e.key)
            f = self.ck.fields(e.value, path, ("sensitive",), ("description",)) or {}
            sensitive = self.ck.boolean(f.get("sensitive"), child(path, "sensitive"))
            description = self.ck.string(f.get("description"), child(path, "description"))
            if sensitive is not None:
                out[e.key] = DataCategory(e.key, sensitive, description or "")
        return out

    def read_regions(self, node: YNode | None) -> dict[str, Region]:
        out: dict[str, Region] = {}
        for e in self.section(node, "regions", REGION, "region"):
            path = child("regions", e.key)
            f = self.ck.fields(e.value, path, ("model", "regulation"), ("honor_gpc",)) or {}
            model = self.ck.enum(
                f.get("model"), child(path, "model"), ConsentModel, "consent model"
            )
            regulation = self.ck.string(f.get("regulation"), child(path, "regulation"))
            self.regulation_declared(f.get("regulation"), child(path, "regulation"), regulation)
            gpc = self.ck.boolean(f.get("honor_gpc"), child(path, "honor_gpc"))
            if model is not None and regulation is not None:
                out[e.key] = Region(e.key, model, regulation, bool(gpc))
        return out

    def category_map(
        self,
        node: YNode | None,
        path: str,
        what: str,
        pattern: re.Pattern[str],
        taken: Collection[str] = (),
    ) -> dict[str, str]:
        """name -> category; identities (`what` = identity) need a sensitive category."""
        out: dict[str, str] = {}
        for e in self.section(node, path, pattern, what):
            at = child(path, e.key)
            if e.key in taken:
                self.ck.error(
                    e.line, at, f"{e.key!r} is an identity; it cannot also be an attribute"
                )
                continue
            category = self.ck.reference(e.value, at, self.known["category"], "category")
            found = self.categories.get(category or "")
            if what == "identity" and found is not None and not found.sensitive:
                message = f"an identity needs a sensitive category; {category!r} is not sensitive"
                self.ck.error(e.line, at, message)
            elif category is not None:
                out[e.key] = category
        return out

    def unknown_attributes(self, node: YNode | None) -> str | None:
        known = self.known["category"]
        allowed = None if known is None else {*known, REJECT}
        value = self.ck.reference(node, "unknown_attributes", allowed, "category")
        return None if value in (None, REJECT) else value

    def read_topics(self, node: YNode | None, purposes: dict[str, Purpose]) -> dict[str, Topic]:
        out: dict[str, Topic] = {}
        for e in self.section(node, "topics", IDENT, "topic"):
            path = child("topics", e.key)
            f = self.ck.fields(e.value, path, ("purpose", "title")) or {}
            known = self.known["purpose"]
            purpose = self.ck.reference(f.get("purpose"), child(path, "purpose"), known, "purpose")
            titles = self.texts(f.get("title"), child(path, "title"))
            if purpose in purposes and not purposes[purpose].channels:
                message = f"purpose {purpose!r} sends no messages (no channels); a topic needs one"
                self.ck.error(f["purpose"].line, child(path, "purpose"), message)
            elif purpose is not None and titles is not None:
                out[e.key] = Topic(e.key, purpose, titles)
        return out

    def read_gates(self, node: YNode | None) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for e in self.section(node, "gates", CAPABILITY, "capability"):
            path = child("gates", e.key)
            known = self.known["purpose"]
            names = self.ck.strings(e.value, path, "purpose", known=known, nonempty=True)
            if names is not None:
                out[e.key] = tuple(names)
        return out

    def read_retention(self, node: YNode | None) -> Retention:
        f = (
            self.ck.fields(node, "retention", (), ("keep_ledger_after_erasure", "events_days"))
            or {}
        )
        keep = self.ck.boolean(
            f.get("keep_ledger_after_erasure"), "retention.keep_ledger_after_erasure"
        )
        days_node = f.get("events_days")
        if isinstance(days_node, YScalar) and days_node.value is None:
            days_node = None  # explicit null: keep events forever
        days = self.ck.integer(days_node, "retention.events_days", minimum=1)
        return Retention(keep_ledger_after_erasure=keep is not False, events_days=days)

    def read_regulations(self, node: YNode | None) -> dict[str, Regulation] | None:
        """DSR deadlines per regulation; None when the section is absent (the builtins apply)."""
        if node is None:
            return None
        out: dict[str, Regulation] = {}
        for e in self.section(node, "regulations", REGULATION, "regulation"):
            if (found := self.regulation(e.key, e.value, child("regulations", e.key))) is not None:
                out[e.key] = found
        return out

    def regulation(self, name: str, node: YNode, path: str) -> Regulation | None:
        optional = (*REGULATION_PERIODS, "roll_forward", "holidays")
        f = self.ck.fields(node, path, ("respond",), optional)
        if f is None:
            return None
        at = {key: child(path, key) for key in ("respond", *optional)}
        respond = self.period(f.get("respond"), at["respond"])
        extension, acknowledge, opt_out = (
            self.period(f.get(key), at[key], nullable=True) for key in REGULATION_PERIODS
        )
        roll = self.ck.boolean(f.get("roll_forward"), at["roll_forward"])
        holidays = self.holidays(f.get("holidays"), at["holidays"])
        if respond is None:
            return None
        return Regulation(name, respond, extension, acknowledge, opt_out, bool(roll), holidays)

    def period(self, node: YNode | None, path: str, nullable: bool = False) -> Period | None:
        if nullable and isinstance(node, YScalar) and node.value is None:
            return None  # explicit null: no such period
        text = self.ck.string(node, path)
        if text is None or node is None:
            return None
        try:
            return parse_period(text)
        except ValueError as error:
            self.ck.error(node.line, path, str(error))
            return None

    def holidays(self, node: YNode | None, path: str) -> frozenset[date]:
        found = self.ck.sequence(node, path)
        items = enumerate(found.items if found else ())
        days = (self.date(item, child(path, i)) for i, item in items)
        return frozenset(date.fromisoformat(day) for day in days if day is not None)

    def regulation_declared(self, node: YNode | None, path: str, name: str | None) -> None:
        """A region's regulation must be declared when the policy has a regulations section."""
        declared = self.known.get("regulation")
        if node is None or name is None or declared is None or name in declared:
            return
        message = (
            f"regulation {name!r} is not declared; declare it under regulations"
            f" (declared: {listing(declared)})"
        )
        self.ck.error(node.line, path, message)
