"""Consent and preference values: what the ledger records and what the current state holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from uuid import UUID


class Decision(StrEnum):
    GRANTED = "granted"
    PENDING = "pending"  # double opt-in awaiting confirmation
    DENIED = "denied"
    WITHDRAWN = "withdrawn"


class Source(StrEnum):
    PREFERENCE_CENTER = "preference_center"
    API = "api"
    IMPORT = "import"
    GPC = "gpc"
    DOUBLE_OPT_IN = "double_opt_in"
    UNSUBSCRIBE_LINK = "unsubscribe_link"
    DSR_REQUEST = "dsr_request"  # a data-subject request (CCPA opt-out of sale/share)


@dataclass(frozen=True, slots=True)
class ConsentState:
    """The latest ledger record for one (purpose, channel); channel "" covers every channel."""

    purpose: str
    channel: str
    decision: Decision
    legal_basis: str
    notice_version: str
    source: str
    recorded_at: datetime
    expires_at: datetime | None
    record_id: UUID

    @property
    def key(self) -> tuple[str, str]:
        return (self.purpose, self.channel)


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time
    timezone: str

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # spans midnight


@dataclass(frozen=True, slots=True)
class Preferences:
    channels: dict[str, bool] = field(default_factory=dict)
    topics: dict[str, bool] = field(default_factory=dict)
    quiet_hours: QuietHours | None = None
    language: str | None = None
    frequency_cap_per_week: int | None = None


def state_key(subject_id: UUID | str, purpose: str, channel: str) -> str:
    return f"{subject_id}:{purpose}:{channel}"
