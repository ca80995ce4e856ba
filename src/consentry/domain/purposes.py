"""The policy as typed, immutable values: what `policies/*.yaml` says, after validation.

Nothing here reads files; `consentry.policy.loader` builds a `Policy` from YAML.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from consentry.domain.deadlines import BUILTIN_REGULATIONS, Regulation


class LegalBasis(StrEnum):
    """GDPR Art. 6(1) bases; `contract` covers transactional and critical messages."""

    CONSENT = "consent"
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTEREST = "vital_interest"

    @property
    def needs_consent(self) -> bool:
        return self is LegalBasis.CONSENT

    @property
    def objectable(self) -> bool:
        """A customer may object to (withdraw from) processing on this basis."""
        return self in (LegalBasis.CONSENT, LegalBasis.LEGITIMATE_INTEREST)


class ConsentModel(StrEnum):
    """How a region treats consent-based purposes when nothing is recorded."""

    OPT_IN = "opt_in"  # GDPR: no record means no
    OPT_OUT = "opt_out"  # CCPA: no record means yes, until the customer opts out


@dataclass(frozen=True, slots=True)
class DataCategory:
    name: str
    sensitive: bool
    description: str = ""


@dataclass(frozen=True, slots=True)
class NoticeVersion:
    """One version of the text shown to the customer, per language."""

    version: str
    texts: dict[str, str]  # language -> text
    published: str = ""  # ISO date, informative

    def content_hash(self, language: str) -> str:
        return "sha256:" + hashlib.sha256(self.texts[language].encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Purpose:
    name: str
    titles: dict[str, str]  # language -> title
    legal_basis: LegalBasis
    categories: tuple[str, ...]
    channels: tuple[str, ...]  # channels this purpose may use; empty: not a messaging purpose
    notices: tuple[NoticeVersion, ...]  # oldest first; the last is current
    double_opt_in: bool = False
    expires_after_days: int | None = None
    reconsent_on_notice_change: bool = False
    gpc_opt_out: bool = False  # a Sec-GPC signal records an opt-out (CCPA sale/share)
    region_defaults: dict[str, bool] = field(default_factory=dict)  # region -> allowed by default

    @property
    def current_notice(self) -> NoticeVersion:
        return self.notices[-1]

    def notice(self, version: str) -> NoticeVersion | None:
        return next((n for n in self.notices if n.version == version), None)


@dataclass(frozen=True, slots=True)
class Region:
    code: str  # e.g. "EU", "US-CA"
    model: ConsentModel
    regulation: str  # e.g. "GDPR", "CCPA"
    honor_gpc: bool = False


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    purpose: str
    titles: dict[str, str]


@dataclass(frozen=True, slots=True)
class Retention:
    keep_ledger_after_erasure: bool = True  # keep the pseudonymous consent ledger as legal proof
    events_days: int | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    version: str  # "sha256:<hex>" of the source file(s)
    controller: dict[str, str]  # name, contact, policy_url
    languages: tuple[str, ...]
    categories: dict[str, DataCategory]
    attributes: dict[str, str]  # known attribute -> category
    unknown_attributes: str | None  # category for undeclared attributes; None rejects them
    identities: dict[str, str]  # identity kind (email, phone) -> category (always sensitive)
    purposes: dict[str, Purpose]
    channels: tuple[str, ...]
    topics: dict[str, Topic]
    regions: dict[str, Region]
    default_region: str
    gates: dict[str, tuple[str, ...]]  # plugin capability -> purposes it needs
    retention: Retention
    double_opt_in_ttl_hours: int = 72
    regulations: dict[str, Regulation] = field(default_factory=lambda: dict(BUILTIN_REGULATIONS))

    def category_of(self, attribute: str) -> str | None:
        return self.attributes.get(attribute, self.unknown_attributes)

    def is_sensitive(self, attribute: str) -> bool:
        category = self.category_of(attribute)
        return category is None or self.categories[category].sensitive

    def region(self, code: str | None) -> Region:
        return self.regions[code or self.default_region]

    def regulation_for(self, name: str) -> Regulation:
        """The DSR deadlines of regulation `name`; KeyError when the policy declares none."""
        found = self.regulations.get(name)
        if found is None:
            raise KeyError(f"regulation {name!r} is not declared in the policy")
        return found
