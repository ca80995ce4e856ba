"""Reading purposes, their notices and per-language texts; the reader state the loader shares.

`PurposeReader` holds what later sections are checked against (languages, channels, the names
declared in each section); `loader._PolicyReader` extends it with the other sections.
"""

from __future__ import annotations

import re
from datetime import date

from consentry.domain.purposes import DataCategory, LegalBasis, NoticeVersion, Purpose
from consentry.policy._checker import Checker, listing
from consentry.policy._nodes import YEntry, YNode, YScalar, child

IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ALL = "all"  # purpose channels: every channel of the policy
REQUIRED_SECTIONS = ("categories", "purposes", "regions")
PURPOSE_REQUIRED = ("title", "legal_basis", "categories", "notices")
PURPOSE_FLAGS = ("double_opt_in", "reconsent_on_notice_change", "gpc_opt_out")
PURPOSE_OPTIONAL = ("channels", "expires_after_days", "region_defaults", *PURPOSE_FLAGS)
CONSENT_ONLY = ("double_opt_in", "expires_after_days", "reconsent_on_notice_change")


def _on(node: YNode | None) -> bool:
    """True when an optional setting is present and not false/null."""
    return isinstance(node, YScalar) and node.value is not None and node.value is not False


class PurposeReader:
    def __init__(self, ck: Checker) -> None:
        self.ck = ck
        self.languages: tuple[str, ...] | None = None
        self.channels: tuple[str, ...] | None = None
        self.categories: dict[str, DataCategory] = {}
        self.known: dict[str, set[str] | None] = {}  # kind -> declared names; None: unreadable

    def section(
        self, node: YNode | None, path: str, pattern: re.Pattern[str], what: str
    ) -> list[YEntry]:
        """Entries of a name -> definition mapping whose names are valid; remembers the names."""
        found = self.ck.mapping(node, path)
        entries = (
            []
            if found is None
            else [e for e in found.entries if self.ck.key_ok(e, path, pattern, what)]
        )
        self.known[what] = None if found is None else {e.key for e in entries}
        if found is not None and not entries and path in REQUIRED_SECTIONS:
            self.ck.error(found.line, path, f"declare at least one {what}")
        return entries

    def read_purposes(self, node: YNode | None) -> dict[str, Purpose]:
        entries = self.section(node, "purposes", IDENT, "purpose")
        read = ((e.key, self.purpose(e.key, e.value, child("purposes", e.key))) for e in entries)
        return {name: purpose for name, purpose in read if purpose is not None}

    def purpose(self, name: str, node: YNode, path: str) -> Purpose | None:
        f = self.ck.fields(node, path, PURPOSE_REQUIRED, PURPOSE_OPTIONAL)
        if f is None:
            return None
        at = {key: child(path, key) for key in (*PURPOSE_REQUIRED, *PURPOSE_OPTIONAL)}
        basis = self.ck.enum(f.get("legal_basis"), at["legal_basis"], LegalBasis, "legal basis")
        titles = self.texts(f.get("title"), at["title"])
        categories = self.ck.strings(
            f.get("categories"), at["categories"], "category", known=self.known["category"]
        )
        channels = self.purpose_channels(f.get("channels"), at["channels"])
        notices = self.notices(f.get("notices"), at["notices"])
        flags = {key: self.ck.boolean(f.get(key), at[key]) for key in PURPOSE_FLAGS}
        expires = self.ck.integer(f.get("expires_after_days"), at["expires_after_days"], minimum=1)
        defaults = self.region_defaults(f.get("region_defaults"), at["region_defaults"])
        self.purpose_rules(f, path, basis, channels)
        if basis is None or titles is None or categories is None or not notices:
            return None
        return Purpose(
            name=name,
            titles=titles,
            legal_basis=basis,
            categories=tuple(categories),
            channels=channels,
            notices=notices,
            double_opt_in=bool(flags["double_opt_in"]),
            expires_after_days=expires,
            reconsent_on_notice_change=bool(flags["reconsent_on_notice_change"]),
            gpc_opt_out=bool(flags["gpc_opt_out"]),
            region_defaults=defaults,
        )

    def purpose_rules(
        self, f: dict[str, YNode], path: str, basis: LegalBasis | None, channels: tuple[str, ...]
    ) -> None:
        """Settings that only make sense with some legal bases."""
        if basis is None:
            return
        for key in CONSENT_ONLY:
            if _on(f.get(key)) and basis is not LegalBasis.CONSENT:
                message = f"only a consent purpose can set {key}; legal_basis is {basis.value}"
                self.ck.error(f[key].line, child(path, key), message)
        if _on(f.get("gpc_opt_out")) and not basis.objectable:
            message = f"gpc_opt_out needs consent or legitimate_interest, not {basis.value}"
            self.ck.error(f["gpc_opt_out"].line, child(path, "gpc_opt_out"), message)
        if _on(f.get("double_opt_in")) and not channels:
            message = "double_opt_in needs a channel to send the confirmation on"
            self.ck.error(f["double_opt_in"].line, child(path, "double_opt_in"), message)

    def purpose_channels(self, node: YNode | None, path: str) -> tuple[str, ...]:
        if isinstance(node, YScalar) and node.value == ALL:
            return self.channels or ()
        known = self.known["channel"]
        return tuple(self.ck.strings(node, path, "channel", known=known) or ())

    def region_defaults(self, node: YNode | None, path: str) -> dict[str, bool]:
        out: dict[str, bool] = {}
        found = self.ck.mapping(node, path)
        for e in found.entries if found else ():
            at = child(path, e.key)
            region = self.ck.reference(
                YScalar(e.key, e.key, e.line), at, self.known["region"], "region"
            )
            allowed = self.ck.boolean(e.value, at)
            if region is not None and allowed is not None:
                out[region] = allowed
        return out

    def notices(self, node: YNode | None, path: str) -> tuple[NoticeVersion, ...]:
        found = self.ck.sequence(node, path)
        if found is not None and not found.items:
            self.ck.error(found.line, path, "at least one notice version is required")
        out: list[NoticeVersion] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(found.items if found else ()):
            notice = self.notice(item, child(path, i), seen)
            if notice and out and notice.published and notice.published < out[-1].published:
                message = (
                    f"list notices oldest first: {notice.published} is before {out[-1].published}"
                )
                self.ck.error(item.line, child(path, i), message)
            if notice:
                out.append(notice)
        return tuple(out)

    def notice(self, node: YNode, path: str, seen: dict[str, int]) -> NoticeVersion | None:
        f = self.ck.fields(node, path, ("version", "text"), ("published",)) or {}
        version = self.ck.string(f.get("version"), child(path, "version"))
        if version is not None and version in seen:
            message = f"duplicate notice version {version!r} (first on line {seen[version]})"
            self.ck.error(f["version"].line, child(path, "version"), message)
            version = None
        elif version is not None:
            seen[version] = f["version"].line
        published = self.date(f.get("published"), child(path, "published"))
        texts = self.texts(f.get("text"), child(path, "text"))
        if version is None or texts is None:
            return None
        return NoticeVersion(version=version, texts=texts, published=published or "")

    def date(self, node: YNode | None, path: str) -> str | None:
        value = self.ck.string(node, path)
        if value is None or node is None:
            return None
        try:
            if ISO_DATE.match(value):
                return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
        self.ck.error(node.line, path, f"expected a date as YYYY-MM-DD, got {value!r}")
        return None

    def texts(self, node: YNode | None, path: str) -> dict[str, str] | None:
        """language -> text, with exactly the declared languages."""
        found = self.ck.mapping(node, path)
        if found is None:
            return None
        langs = self.languages
        out: dict[str, str] = {}
        for e in found.entries:
            if langs is not None and e.key not in langs:
                message = f"language {e.key!r} is not declared in languages ({listing(langs)})"
                self.ck.error(e.line, child(path, e.key), message)
            elif (text := self.ck.string(e.value, child(path, e.key))) is not None:
                out[e.key] = text
        written = {e.key for e in found.entries}
        for lang in [lang for lang in langs or () if lang not in written]:
            self.ck.error(found.line, path, f"missing the {lang!r} text")
        return out
