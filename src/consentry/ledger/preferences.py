"""Customer preferences: channels on/off, topics, quiet hours, language, frequency cap.

Recorded in the ledger style: each change is a `preference_records` row (what changed) and the
current document in `preference_state`, with one audit entry.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import time
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from consentry.core import reads
from consentry.core.principals import Principal, recorded_source
from consentry.core.runtime import Core
from consentry.domain.consent import Preferences, QuietHours
from consentry.domain.errors import Invalid
from consentry.domain.purposes import Policy
from consentry.storage.writer import WriteTx

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class PreferencePatch:
    """A partial change; fields left UNSET are kept, `quiet_hours=None` clears them."""

    channels: dict[str, bool] | None = None
    topics: dict[str, bool] | None = None
    quiet_hours: dict[str, str] | None = UNSET
    language: str | None = UNSET
    frequency_cap_per_week: int | None = UNSET

    def changed_fields(self) -> list[str]:
        names = [f"channels.{c}" for c in (self.channels or {})]
        names += [f"topics.{t}" for t in (self.topics or {})]
        for name in ("quiet_hours", "language", "frequency_cap_per_week"):
            if getattr(self, name) is not UNSET:
                names.append(name)
        return names


def document_to_preferences(doc: dict[str, Any]) -> Preferences:
    quiet = doc.get("quiet_hours")
    return Preferences(
        channels=dict(doc.get("channels", {})),
        topics=dict(doc.get("topics", {})),
        quiet_hours=QuietHours(_time(quiet["start"]), _time(quiet["end"]), quiet["timezone"])
        if quiet
        else None,
        language=doc.get("language"),
        frequency_cap_per_week=doc.get("frequency_cap_per_week"),
    )


def _time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def validate(policy: Policy, patch: PreferencePatch) -> None:
    for channel in patch.channels or {}:
        if channel not in policy.channels:
            raise Invalid(
                f"unknown channel '{channel}'; the policy knows {', '.join(policy.channels)}",
                field=f"channels.{channel}",
            )
    for topic in patch.topics or {}:
        if topic not in policy.topics:
            raise Invalid(
                f"unknown topic '{topic}'; the policy knows {', '.join(sorted(policy.topics))}",
                field=f"topics.{topic}",
            )
    if patch.language not in (UNSET, None) and patch.language not in policy.languages:
        raise Invalid(f"language must be one of {', '.join(policy.languages)}", field="language")
    cap = patch.frequency_cap_per_week
    if cap not in (UNSET, None) and not 0 <= cap <= 1000:
        raise Invalid(
            "frequency_cap_per_week must be between 0 and 1000", field="frequency_cap_per_week"
        )
    if patch.quiet_hours not in (UNSET, None):
        _validate_quiet_hours(patch.quiet_hours)


def _validate_quiet_hours(quiet: dict[str, str]) -> None:
    for name in ("start", "end"):
        if not HHMM.match(str(quiet.get(name, ""))):
            raise Invalid(
                f"quiet_hours.{name} must be a time as HH:MM (24-hour)", field=f"quiet_hours.{name}"
            )
    zone = str(quiet.get("timezone", ""))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"quiet_hours.timezone '{zone}' is not an IANA time zone such as 'Europe/Paris'",
            field="quiet_hours.timezone",
        ) from None
    if zone not in available_timezones():
        raise Invalid(
            f"quiet_hours.timezone '{zone}' is not an IANA time zone", field="quiet_hours.timezone"
        )


def _apply(doc: dict[str, Any], patch: PreferencePatch) -> dict[str, Any]:
    out = {"channels": dict(doc.get("channels", {})), "topics": dict(doc.get("topics", {}))}
    out |= {k: v for k, v in doc.items() if k not in out}
    out["channels"].update(patch.channels or {})
    out["topics"].update(patch.topics or {})
    for name in ("quiet_hours", "language", "frequency_cap_per_week"):
        value = getattr(patch, name)
        if value is UNSET:
            continue
        if value is None:
            out.pop(name, None)
        else:
            out[name] = dict(value) if isinstance(value, dict) else value
    return out


async def read(core: Core, subject_id: UUID, actor: Principal | None = None) -> dict[str, Any]:
    """The current preferences; a read by staff is audited."""

    async def query(db: reads.Reader) -> dict[str, Any]:
        rows = await db.fetch(
            "SELECT document FROM preference_state WHERE subject_id = ?", subject_id
        )
        return _apply(json.loads(rows[0]["document"]) if rows else {}, PreferencePatch())

    return await reads.read(
        core, actor, query, action="preferences.read", target=f"subject:{subject_id}"
    )


async def change(
    core: Core,
    subject_id: UUID,
    patch: PreferencePatch,
    *,
    source: str | None,
    actor: Principal,
) -> dict[str, Any]:
    validate(core.policy, patch)
    recorded = recorded_source(actor, source).value

    async def job(tx: WriteTx) -> dict[str, Any]:
        tx.concerns(subject_id)
        row = await tx.fetchrow(
            "SELECT document FROM preference_state WHERE subject_id = ?", subject_id
        )
        doc = _apply(json.loads(row["document"]) if row else {}, patch)
        record_id = uuid.uuid4()
        changes = _apply({}, patch) | {
            "cleared": [
                n
                for n in ("quiet_hours", "language", "frequency_cap_per_week")
                if getattr(patch, n) is None
            ]
        }
        await tx.execute(
            "INSERT INTO preference_records (id, subject_id, changes, source, actor,"
            " policy_version, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            record_id,
            subject_id,
            json.dumps(changes, sort_keys=True),
            recorded,
            actor.actor,
            core.policy.version,
            tx.now,
        )
        await tx.execute(
            "INSERT INTO preference_state (subject_id, document, record_id, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (subject_id) DO UPDATE SET"
            " document = excluded.document, record_id = excluded.record_id,"
            " updated_at = excluded.updated_at",
            subject_id,
            json.dumps(doc, sort_keys=True),
            record_id,
            tx.now,
        )
        tx.audit(
            actor.actor,
            "preferences.changed",
            f"subject:{subject_id}",
            fields=patch.changed_fields(),
            source=recorded,
            record=str(record_id),
        )
        return doc

    return await core.writer.submit(job)
