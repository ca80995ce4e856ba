"""The summary page's views: whatever a bundle's sections hold, as rows of display strings.

Pure. A view never assumes a shape: a section of an unexpected type renders as empty rather
than failing the build.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from consentry.dsr.bundle_files import json_default

EVENTS_SHOWN = 100  # rows in the summary's event table; the full list is in events.json

_REQUEST_TYPES = {
    "access": "Access (a copy of your data)",
    "portability": "Portability (your data in a reusable format)",
    "erasure": "Erasure (deleting your data)",
    "rectification": "Correction of your data",
    "restriction": "Restricting the use of your data",
    "objection": "Objection to the use of your data",
    "opt_out": "Opting out",
}

_PREFERENCE_LABELS = {
    "channels": "Channels",
    "topics": "Topics",
    "quiet_hours": "Quiet hours",
    "language": "Language",
    "frequency_cap_per_week": "At most this many messages a week",
}


def _as_dict(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [_as_dict(v) for v in _as_list(value)]


def count(value: Any) -> int:
    if isinstance(value, Mapping | list | tuple):
        return len(value)
    return 0 if value is None else 1


def holds(value: Any) -> bool:
    return not (value is None or (isinstance(value, Mapping | list | tuple | str) and not value))


def when_text(value: Any) -> str:
    """A point in time for a person to read: minutes, and "UTC" when it is UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() == timedelta(0):
            return value.strftime("%Y-%m-%d %H:%M UTC")
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    return cell(value)


def cell(value: Any) -> str:
    """One value as a short piece of text for a table cell."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date | time):
        return when_text(value)
    if isinstance(value, int | float | UUID):
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=json_default)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _short(value: Any, limit: int = 300) -> str:
    text = "" if value is None or value == {} else cell(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _moment(value: Any) -> float:
    """A sort key for a point in time, whatever form it came in; unknowns sort oldest."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return float("-inf")
    if isinstance(value, datetime):
        try:
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        except (OverflowError, ValueError, OSError):
            return float("-inf")
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    return float("-inf")


def _newest_first(rows: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """Newest first; rows at the same moment keep the later-given one first."""
    order = sorted(range(len(rows)), key=lambda i: (_moment(rows[i].get(field)), i), reverse=True)
    return [rows[i] for i in order]


def _pairs(value: Any) -> list[tuple[str, str]]:
    return [(key, cell(v)) for key, v in sorted(_as_dict(value).items())]


def controller_view(controller: Mapping[str, Any]) -> dict[str, Any]:
    shown = {"name", "contact", "policy_url"}
    return {
        "contact": cell(controller["contact"]) if controller.get("contact") else "",
        "policy_url": cell(controller["policy_url"]) if controller.get("policy_url") else "",
        "other": [
            (key.replace("_", " ").capitalize(), cell(value))
            for key, value in sorted(_as_dict(controller).items())
            if key not in shown
        ],
    }


def customer_view(customer: Any) -> dict[str, Any]:
    c = _as_dict(customer)
    facts = []
    if c.get("region") is not None:
        facts.append(("Region", cell(c["region"])))
    if c.get("created_at") is not None:
        facts.append(("Customer since", when_text(c["created_at"])))
    if c.get("updated_at") is not None:
        facts.append(("Last updated", when_text(c["updated_at"])))
    return {
        "facts": facts,
        "identities": _pairs(c.get("identities")),
        "attributes": _pairs(c.get("attributes")),
    }


def _decision(value: Any) -> tuple[str, str]:
    text = cell(value)
    css = {"granted": "yes", "denied": "no", "withdrawn": "no"}.get(text, "")
    return text, css


def _channel(value: Any) -> str:
    return "all channels" if value in ("", None) else cell(value)


def consents_view(consents: Any) -> dict[str, Any]:
    c = _as_dict(consents)
    current = []
    for row in _dicts(c.get("current")):
        decision, css = _decision(row.get("decision"))
        current.append(
            {
                "purpose": cell(row.get("purpose")),
                "channel": _channel(row.get("channel")),
                "decision": decision,
                "css": css,
                "legal_basis": cell(row.get("legal_basis")),
                "notice_version": cell(row.get("notice_version")),
                "since": when_text(row.get("recorded_at")),
                "expires": when_text(row["expires_at"]) if row.get("expires_at") else "",
            }
        )
    history = []
    for row in _newest_first(_dicts(c.get("history")), "recorded_at"):
        decision, css = _decision(row.get("decision"))
        notice = row.get("notice_text")
        history.append(
            {
                "when": when_text(row.get("recorded_at")),
                "purpose": cell(row.get("purpose")),
                "channel": _channel(row.get("channel")),
                "decision": decision,
                "css": css,
                "legal_basis": cell(row.get("legal_basis")),
                "notice_version": cell(row.get("notice_version")),
                "language": cell(row["language"]) if row.get("language") else "",
                "source": cell(row.get("source")).replace("_", " "),
                "actor": cell(row["actor"]) if row.get("actor") else "",
                "notice_text": cell(notice) if notice else "",
            }
        )
    return {"current": current, "history": history}


def _switches(value: Any) -> str:
    """{"email": true, "sms": false} -> "email: on, sms: off"."""
    d = _as_dict(value)
    if not d:
        return "—"
    return ", ".join(
        f"{k}: {('on' if v else 'off') if isinstance(v, bool) else cell(v)}"
        for k, v in sorted(d.items())
    )


def _preference_value(key: str, value: Any) -> str:
    if key in ("channels", "topics") and isinstance(value, Mapping):
        return _switches(value)
    if key == "quiet_hours" and isinstance(value, Mapping):
        zone = f" ({cell(value['timezone'])})" if value.get("timezone") else ""
        return f"{cell(value.get('start'))} to {cell(value.get('end'))}{zone}"
    return cell(value)


def preferences_view(preferences: Any) -> dict[str, Any]:
    p = _as_dict(preferences)
    current = _as_dict(p.get("current"))
    ordered = [k for k in _PREFERENCE_LABELS if k in current]
    ordered += sorted(k for k in current if k not in _PREFERENCE_LABELS)
    return {
        "current": [
            (_PREFERENCE_LABELS.get(k, k.replace("_", " ")), _preference_value(k, current[k]))
            for k in ordered
            if current[k] is not None
        ],
        "history": [
            {
                "when": when_text(row.get("recorded_at")),
                "changes": _short(row.get("changes")),
                "source": cell(row.get("source")).replace("_", " "),
                "actor": cell(row["actor"]) if row.get("actor") else "",
            }
            for row in _newest_first(_dicts(p.get("history")), "recorded_at")
        ],
    }


def events_view(events: Any) -> dict[str, Any]:
    # Tens of thousands of rows: one pass per column, and in the common case (every occurred_at
    # an aware UTC datetime) no Python function per row.
    rows = [e if type(e) is dict or isinstance(e, Mapping) else {} for e in _as_list(events)]
    names = [
        n if type(n) is str else ("(unnamed)" if n is None else cell(n))
        for n in [e.get("name") for e in rows]
    ]
    counts = sorted(Counter(names).items(), key=lambda kv: (-kv[1], kv[0]))
    whens = [e.get("occurred_at") for e in rows]
    keys: list[Any] = whens
    if not all(type(w) is datetime and w.tzinfo is UTC for w in whens):
        keys = [_moment(w) for w in whens]
    # Stable and linear on rows already in time order (as callers give them); of rows at the
    # same moment, the later-given one comes first.
    recent = sorted(range(len(rows)), key=keys.__getitem__)[-EVENTS_SHOWN:][::-1]
    shown = [
        {
            "when": when_text(whens[i]),
            "name": names[i],
            "details": _short(rows[i].get("properties")),
        }
        for i in recent
    ]
    return {"total": len(rows), "counts": counts, "shown": shown}


def requests_view(requests: Any) -> list[dict[str, str]]:
    def kind(value: Any) -> str:
        return _REQUEST_TYPES.get(value, cell(value)) if isinstance(value, str) else cell(value)

    return [
        {
            "id": cell(r.get("id")),
            "type": kind(r.get("type")),
            "regulation": cell(r.get("regulation")).upper() if r.get("regulation") else "—",
            "state": cell(r.get("state")).replace("_", " "),
            "received": when_text(r.get("received_at")),
            "due": when_text(r.get("due")),
            "completed": when_text(r.get("completed_at")) if r.get("completed_at") else "—",
        }
        for r in _newest_first(_dicts(requests), "received_at")
    ]
