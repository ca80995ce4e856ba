"""The export bundle (GDPR Art. 15/20, CCPA right to know): built, read back, and tampered with."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.dsr.bundle import FORMAT, BundleError, build_bundle, read_bundle

NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
REQUEST_ID = "0b6f2a1c-5d7e-4e8f-9a0b-1c2d3e4f5a6b"
CONTROLLER = {
    "name": "Example Inc.",
    "contact": "privacy@example.com",
    "policy_url": "https://example.com/privacy",
}
HOSTILE = "<script>alert(1)</script>"


def consent_row(purpose: str, decision: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "purpose": purpose,
        "channel": "email",
        "decision": decision,
        "legal_basis": "consent",
        "notice_version": "v2",
        "source": "preference_center",
        "recorded_at": at,
        "expires_at": None,
        **extra,
    }


def ledger_row(purpose: str, decision: str, at: datetime, text: str | None) -> dict[str, Any]:
    return consent_row(
        purpose,
        decision,
        at,
        notice_hash="ab" * 32,
        notice_text=text,
        language="en",
        policy_version="cd" * 32,
        actor="customer",
        evidence={"ip": "203.0.113.7", "user_agent": "Firefox"},
    )


def event(name: str, at: datetime, **properties: Any) -> dict[str, Any]:
    return {"name": name, "occurred_at": at, "received_at": at, "properties": properties}


def sections(events: list[Any] | None = None) -> dict[str, Any]:
    return {
        "customer": {
            "external_id": "cust-42",
            "region": "eu",
            "identities": {"email": "ana@example.com", "phone": "+33 6 12 34 56 78"},
            "attributes": {"first_name": "Ana", "nickname": HOSTILE, "city": "Zürich"},
            "created_at": T0,
            "updated_at": T0 + timedelta(days=3),
        },
        "events": events
        if events is not None
        else [
            event("page_view", T0 + timedelta(hours=1), path="/"),
            event("page_view", T0 + timedelta(hours=2), path="/shop"),
            event("purchase", T0 + timedelta(hours=3), amount=19.99, currency="EUR"),
            event("page_view", T0 + timedelta(hours=4), path="/thanks"),
            event("purchase", T0 + timedelta(hours=5), amount=5, currency="EUR"),
        ],
        "consents": {
            "current": [
                consent_row("marketing", "granted", T0 + timedelta(days=1)),
                consent_row("analytics", "denied", T0 + timedelta(days=2), channel=""),
            ],
            "history": [
                ledger_row("marketing", "denied", T0, "We would like to email you offers."),
                ledger_row("marketing", "granted", T0 + timedelta(days=1), "Offers by email."),
                ledger_row("analytics", "denied", T0 + timedelta(days=2), None),
            ],
        },
        "preferences": {
            "current": {
                "channels": {"email": True, "sms": False},
                "topics": {"newsletter": True},
                "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"},
                "language": "fr",
                "frequency_cap_per_week": 3,
            },
            "history": [
                {
                    "changes": {"channels": {"sms": False}},
                    "source": "preference_center",
                    "actor": "customer",
                    "recorded_at": T0 + timedelta(days=1),
                }
            ],
        },
        "requests": [
            {
                "id": UUID(REQUEST_ID),
                "type": "access",
                "regulation": "gdpr",
                "state": "in_progress",
                "received_at": NOW - timedelta(days=1),
                "due": date(2025, 4, 12),
                "completed_at": None,
            }
        ],
    }


PLUGINS: dict[str, Any] = {
    "chat": {"messages": [{"at": T0, "text": "hello"}]},
    "loyalty-points": {},
}


def build(**overrides: Any) -> bytes:
    args: dict[str, Any] = {
        "request_id": REQUEST_ID,
        "external_id": "cust-42",
        "generated_at": NOW,
        "controller": CONTROLLER,
        "sections": sections(),
        "plugins": PLUGINS,
    }
    args.update(overrides)
    return build_bundle(**args)


def members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        return {name: z.read(name) for name in z.namelist()}


def summary(bundle: bytes) -> str:
    return members(bundle)["summary.html"].decode()


def rezip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(name, content)
    return out.getvalue()


def tampered(bundle: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    files = members(bundle)
    change(files)
    return rezip(files)


def edit_manifest(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, bytes]], None]:
    def edit(files: dict[str, bytes]) -> None:
        manifest = json.loads(files["manifest.json"])
        change(manifest)
        files["manifest.json"] = json.dumps(manifest).encode()

    return edit


def entry(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in manifest["files"] if f["name"] == name)
    return found


# -- round trip, layout, determinism ----------------------------------------------------------


def test_round_trip_gives_back_the_data() -> None:
    opened = read_bundle(build())
    files = opened["files"]
    assert sorted(files) == [
        "consents.json",
        "customer.json",
        "events.json",
        "plugins/chat.json",
        "plugins/loyalty-points.json",
        "preferences.json",
        "requests.json",
    ]
    assert files["customer.json"] == {
        "external_id": "cust-42",
        "region": "eu",
        "identities": {"email": "ana@example.com", "phone": "+33 6 12 34 56 78"},
        "attributes": {"first_name": "Ana", "nickname": HOSTILE, "city": "Zürich"},
        "created_at": "2024-01-02T03:04:05+00:00",
        "updated_at": "2024-01-05T03:04:05+00:00",
    }
    assert files["requests.json"] == [
        {
            "id": REQUEST_ID,
            "type": "access",
            "regulation": "gdpr",
            "state": "in_progress",
            "received_at": "2025-03-13T09:26:53+00:00",
            "due": "2025-04-12",
            "completed_at": None,
        }
    ]
    assert [e["name"] for e in files["events.json"]] == [e["name"] for e in sections()["events"]]
    assert files["events.json"][2]["properties"] == {"amount": 19.99, "currency": "EUR"}
    history = files["consents.json"]["history"]
    assert history[0]["notice_text"] == "We would like to email you offers."
    assert history[0]["evidence"] == {"ip": "203.0.113.7", "user_agent": "Firefox"}
    assert files["preferences.json"]["current"]["quiet_hours"]["timezone"] == "Europe/Paris"
    assert files["plugins/chat.json"] == {
        "messages": [{"at": "2024-01-02T03:04:05+00:00", "text": "hello"}]
    }
    assert files["plugins/loyalty-points.json"] == {}

    manifest = opened["manifest"]
    assert manifest["format"] == FORMAT == "consentry-export/1"
    assert manifest["request_id"] == REQUEST_ID
    assert manifest["external_id"] == "cust-42"
    assert manifest["generated_at"] == "2025-03-14T09:26:53+00:00"
    assert manifest["controller"] == CONTROLLER


def test_json_files_are_utf8_indented_sorted_and_unescaped() -> None:
    files = members(build())
    text = files["customer.json"].decode("utf-8")
    assert '"city": "Zürich"' in text  # ensure_ascii=False
    assert text == json.dumps(
        json.loads(text), ensure_ascii=False, indent=2, sort_keys=True
    )  # indent=2, sort_keys=True, byte for byte
    assert text.startswith('{\n  "attributes": {\n    "city": "Zürich",')


def test_generated_at_is_written_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    opened = read_bundle(build(generated_at=NOW.astimezone(paris)))
    assert opened["manifest"]["generated_at"] == "2025-03-14T09:26:53+00:00"


def test_layout_and_zip_entries_are_fixed() -> None:
    bundle = build()
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        infos = z.infolist()
    names = [i.filename for i in infos]
    assert names[0] == "manifest.json"
    assert names[1:] == sorted(names[1:])
    assert set(names) == {
        "manifest.json",
        "summary.html",
        "customer.json",
        "events.json",
        "consents.json",
        "preferences.json",
        "requests.json",
        "plugins/chat.json",
        "plugins/loyalty-points.json",
    }
    for info in infos:
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.date_time == (2025, 3, 14, 9, 26, 52)  # ZIP keeps even seconds
        assert info.external_attr >> 16 == 0o100644
        assert info.create_system == 3


def test_two_builds_are_byte_identical() -> None:
    first = build()
    assert build() == first
    # Equal inputs built in another order give the same bytes too.
    reordered = dict(reversed(list(sections().items())))
    reordered["customer"] = dict(reversed(list(reordered["customer"].items())))
    plugins = dict(reversed(list(PLUGINS.items())))
    assert build(sections=reordered, plugins=plugins) == first
    # And anything that changes the content changes the bytes.
    assert build(generated_at=NOW + timedelta(seconds=2)) != first
    assert build(request_id="other") != first


def test_manifest_lists_every_other_file_with_its_checksum() -> None:
    bundle = build()
    files = members(bundle)
    manifest = json.loads(files.pop("manifest.json"))
    listed = manifest["files"]
    assert [f["name"] for f in listed] == sorted(files)
    for item in listed:
        content = files[item["name"]]
        assert item["sha256"] == hashlib.sha256(content).hexdigest()
        assert item["bytes"] == len(content)
        expected = (
            "text/html; charset=utf-8" if item["name"].endswith(".html") else ("application/json")
        )
        assert item["media_type"] == expected


def test_empty_bundle_still_has_a_summary() -> None:
    opened = read_bundle(build(sections={}, plugins={}))
    assert opened["files"] == {}
    assert [f["name"] for f in opened["manifest"]["files"]] == ["summary.html"]


# -- the summary page -------------------------------------------------------------------------


def test_summary_escapes_hostile_values() -> None:
    data = sections(events=[event(HOSTILE, T0, note=HOSTILE)])
    data["customer"]["identities"]["email"] = HOSTILE
    data["consents"]["history"][0]["notice_text"] = HOSTILE
    html = summary(
        build(
            sections=data,
            plugins={"chat": {"said": HOSTILE}},
            controller={**CONTROLLER, "name": HOSTILE},
            external_id=HOSTILE,
        )
    )
    assert "<script" not in html
    assert "alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the attribute value, the identity, the notice, the event name, the plugin data ...
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6


def test_summary_is_self_contained() -> None:
    html = summary(build())
    assert html.startswith("<!DOCTYPE html>")
    assert "<style>" in html and "@media print" in html
    for external in ("<link", "<script", "<img", "<iframe", "src=", "href=", "@import", "url("):
        assert external not in html, external


def test_summary_says_who_what_and_when() -> None:
    html = summary(build())
    assert "Example Inc." in html
    assert "privacy@example.com" in html
    assert REQUEST_ID in html
    assert "cust-42" in html
    assert "2025-03-14 09:26 UTC" in html


def test_summary_shows_identities_attributes_and_consents() -> None:
    html = summary(build())
    assert "<td>email</td><td>ana@example.com</td>" in html
    assert "<td>first_name</td><td>Ana</td>" in html
    assert "Zürich" in html
    for purpose in ("marketing", "analytics"):
        assert f"<td>{purpose}</td>" in html
    assert "all channels" in html  # channel "" covers every channel
    current = html.split("As they stand now")[1].split("History, newest first")[0]
    assert "granted" in current and "denied" in current and "v2" in current
    # history newest first, with the notice text shown when it was given
    history = html.split("History, newest first")[1].split("communication preferences")[0]
    assert history.index("2024-01-04 03:04 UTC") < history.index("2024-01-03 03:04 UTC")
    assert history.index("2024-01-03 03:04 UTC") < history.index("2024-01-02 03:04 UTC")
    assert "Offers by email." in history
    assert "We would like to email you offers." in history
    assert history.index("Offers by email.") < history.index("We would like to email you")


def test_summary_shows_preferences_requests_and_plugins() -> None:
    html = summary(build())
    assert "email: on, sms: off" in html
    assert "22:00 to 07:00 (Europe/Paris)" in html
    assert "Access (a copy of your data)" in html and "GDPR" in html and "2025-04-12" in html
    chat = html.split("<h3>chat</h3>")[1].split("</pre>")[0]
    assert "<pre>{\n  &#34;messages&#34;: [" in chat
    loyalty = html.split("<h3>loyalty-points</h3>")[1]
    assert loyalty.lstrip().startswith("<p>Nothing held.</p>")


def test_summary_counts_events_and_points_to_events_json() -> None:
    html = summary(build())
    assert re.search(r"<td>page_view</td><td class=\"num\">3</td>", html)
    assert re.search(r"<td>purchase</td><td class=\"num\">2</td>", html)
    assert "5 events" in html
    assert "<code>events.json</code>" in html
    recent = html.split("All events, newest first")[1].split("</table>")[0]
    assert recent.index("2024-01-02 08:04 UTC") < recent.index("2024-01-02 04:04 UTC")


def test_summary_lists_what_is_in_the_bundle() -> None:
    bundle = build(sections={**sections(), "support_tickets": [1, 2, 3]})
    html = summary(bundle)
    contents = html.split("What is in this bundle")[1]
    for name in members(bundle):
        assert f"<code>{name}</code>" in contents, name
    # an unknown section: listed by name with its item count
    other = html.split("Other data")[1].split("</table>")[0]
    assert '<td>support_tickets</td><td class="num">3</td>' in other


def test_ten_thousand_events() -> None:
    events = [
        event(f"event_{i % 7}", T0 + timedelta(minutes=i), n=i, note="ü" * (i % 5))
        for i in range(10_000)
    ]
    bundle = build(sections=sections(events=events))
    opened = read_bundle(bundle)
    back = opened["files"]["events.json"]
    assert len(back) == 10_000
    assert back[9_999]["properties"] == {"n": 9_999, "note": "üüüü"}
    html = summary(bundle)
    assert "10000 events" in html
    recent = html.split("The 100 most recent")[1].split("</table>")[0]
    assert recent.count("<tr>") == 101  # the header and 100 rows
    newest = (T0 + timedelta(minutes=9_999)).strftime("%Y-%m-%d %H:%M UTC")
    assert recent.index(newest) < recent.index("&#34;n&#34;: 9998")
    assert "&#34;n&#34;: 9899" not in recent  # the 101st most recent is not shown
    assert "The full list is in <code>events.json</code>" in html
    assert re.search(r"<td>event_0</td><td class=\"num\">1429</td>", html)


def test_unordered_and_oddly_typed_times_still_render() -> None:
    events: list[Any] = [
        event("b", T0 + timedelta(hours=1)),
        {"name": "a", "occurred_at": "2030-01-01T00:00:00+00:00"},
        {"name": None, "occurred_at": None},
        {"occurred_at": datetime(2031, 1, 1)},  # naive
        "not an event",
    ]
    html = summary(build(sections=sections(events=events)))
    recent = html.split("All events, newest first")[1].split("</table>")[0]
    assert recent.index("2031-01-01") < recent.index("2030-01-01") < recent.index("2024-01-02")
    assert "(unnamed)" in recent


# -- tampering --------------------------------------------------------------------------------


def rejected(bundle: bytes, file: str) -> str:
    with pytest.raises(BundleError) as caught:
        read_bundle(bundle)
    message = str(caught.value)
    assert message.startswith(f"{file}:"), message
    return message


def test_the_untouched_bundle_reads_and_a_repacked_one_too() -> None:
    bundle = build()
    assert read_bundle(tampered(bundle, lambda files: None))["files"]["customer.json"]


@pytest.mark.parametrize("name", ["customer.json", "summary.html", "plugins/chat.json"])
def test_a_changed_byte_is_rejected(name: str) -> None:
    def flip(files: dict[str, bytes]) -> None:
        content = bytearray(files[name])
        content[len(content) // 2] ^= 0x01
        files[name] = bytes(content)

    assert "SHA-256" in rejected(tampered(build(), flip), name)


def test_a_changed_byte_in_the_archive_itself_is_rejected() -> None:
    bundle = bytearray(build())
    offset = bundle.index(b"summary.html") + 200  # inside summary.html's compressed data
    bundle[offset] ^= 0xFF
    with pytest.raises(BundleError, match=r"^summary\.html: "):
        read_bundle(bytes(bundle))


def test_a_dropped_file_is_rejected() -> None:
    def drop(files: dict[str, bytes]) -> None:
        del files["consents.json"]

    assert "missing" in rejected(tampered(build(), drop), "consents.json")


def test_an_added_file_is_rejected() -> None:
    def add(files: dict[str, bytes]) -> None:
        files["extra.json"] = b"{}"

    assert "not listed" in rejected(tampered(build(), add), "extra.json")

    def add_elsewhere(files: dict[str, bytes]) -> None:
        files["../evil.sh"] = b"rm -rf /"

    rejected(tampered(build(), add_elsewhere), "../evil.sh")


def test_a_missing_manifest_is_rejected() -> None:
    def drop(files: dict[str, bytes]) -> None:
        del files["manifest.json"]

    assert "missing" in rejected(tampered(build(), drop), "manifest.json")


@pytest.mark.parametrize(
    ("change", "file"),
    [
        (lambda m: entry(m, "events.json").update(sha256="0" * 64), "events.json"),
        (lambda m: entry(m, "events.json").update(bytes=1), "events.json"),
        (lambda m: entry(m, "events.json").update(media_type="text/plain"), "events.json"),
        (lambda m: m["files"].remove(entry(m, "requests.json")), "requests.json"),
        (lambda m: m["files"].append(dict(entry(m, "events.json"))), "events.json"),
        (
            lambda m: m["files"].append({**entry(m, "events.json"), "name": "ghost.json"}),
            "ghost.json",
        ),
        (
            lambda m: m["files"].append({**entry(m, "events.json"), "name": "../x.json"}),
            "../x.json",
        ),
        (lambda m: m.update(format="consentry-export/2"), "manifest.json"),
        (lambda m: m.pop("format"), "manifest.json"),
        (lambda m: m.pop("request_id"), "manifest.json"),
        (lambda m: m.update(files={}), "manifest.json"),
        (lambda m: m["files"].append("events.json"), "manifest.json"),
        (lambda m: m["files"].remove(entry(m, "summary.html")), "summary.html"),
    ],
)
def test_an_edited_manifest_is_rejected(
    change: Callable[[dict[str, Any]], None], file: str
) -> None:
    rejected(tampered(build(), edit_manifest(change)), file)


def test_a_manifest_that_is_not_json_is_rejected() -> None:
    def garble(files: dict[str, bytes]) -> None:
        files["manifest.json"] = b"{not json"

    assert "not valid JSON" in rejected(tampered(build(), garble), "manifest.json")

    def array(files: dict[str, bytes]) -> None:
        files["manifest.json"] = b"[]"

    rejected(tampered(build(), array), "manifest.json")


def test_invalid_json_with_a_matching_checksum_is_rejected() -> None:
    def corrupt(files: dict[str, bytes]) -> None:
        bad = b'{"events": [1, 2,'
        files["events.json"] = bad
        manifest = json.loads(files["manifest.json"])
        entry(manifest, "events.json").update(
            sha256=hashlib.sha256(bad).hexdigest(), bytes=len(bad)
        )
        files["manifest.json"] = json.dumps(manifest).encode()

    assert "not valid JSON" in rejected(tampered(build(), corrupt), "events.json")


def test_nan_is_not_json() -> None:
    def corrupt(files: dict[str, bytes]) -> None:
        bad = b"[NaN]"
        files["events.json"] = bad
        manifest = json.loads(files["manifest.json"])
        entry(manifest, "events.json").update(
            sha256=hashlib.sha256(bad).hexdigest(), bytes=len(bad)
        )
        files["manifest.json"] = json.dumps(manifest).encode()

    rejected(tampered(build(), corrupt), "events.json")


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04garbage", b"\x00" * 100])
def test_not_a_zip_is_rejected(data: bytes) -> None:
    with pytest.raises(BundleError, match=r"^bundle: not a ZIP archive"):
        read_bundle(data)


# -- what cannot be built ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["", "Events", "1events", "_x", "a-b", "a.b", "a/b", "../x", "a" * 65, "manifest", 7]
)
def test_bad_section_names_are_rejected(name: Any) -> None:
    with pytest.raises(BundleError, match=r"\.json: "):
        build(sections={name: []})


@pytest.mark.parametrize("name", ["", "Chat", "-chat", "9chat", "a/b", "../x", "a.b", "a" * 65])
def test_bad_plugin_names_are_rejected(name: str) -> None:
    with pytest.raises(BundleError, match=r"^plugins/.*\.json: "):
        build(plugins={name: {}})


def test_good_names_at_the_limits_are_accepted() -> None:
    opened = read_bundle(build(sections={"a" * 64: 1, "x_9": 2}, plugins={"b" * 64: 3, "a-b_c": 4}))
    assert opened["files"][f"{'a' * 64}.json"] == 1
    assert opened["files"][f"plugins/{'b' * 64}.json"] == 3
    assert opened["files"]["plugins/a-b_c.json"] == 4


@pytest.mark.parametrize(
    "value",
    [object(), {1, 2}, b"bytes", float("nan"), float("inf"), "\ud800", {"k": [Ellipsis]}],
    ids=["object", "set", "bytes", "nan", "inf", "lone-surrogate", "nested"],
)
def test_data_that_is_not_json_names_the_section(value: Any) -> None:
    with pytest.raises(BundleError, match=r"^events\.json: "):
        build(sections={**sections(), "events": [event("x", T0, bad=value)]})
    with pytest.raises(BundleError, match=r"^plugins/chat\.json: "):
        build(plugins={"chat": {"bad": value}})


def test_a_naive_generated_at_is_rejected() -> None:
    with pytest.raises(BundleError, match=r"^manifest\.json: generated_at"):
        build(generated_at=datetime(2025, 1, 1))


# -- properties -------------------------------------------------------------------------------

SECTION_NAMES = st.from_regex(r"\A[a-z][a-z0-9_]{0,63}\Z").filter(lambda n: n != "manifest")
PLUGIN_NAMES = st.from_regex(r"\A[a-z][a-z0-9_-]{0,63}\Z")
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSONISH = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.dictionaries(SECTION_NAMES, JSONISH, max_size=4),
    plugins=st.dictionaries(PLUGIN_NAMES, JSONISH, max_size=3),
)
def test_any_json_data_round_trips_exactly(data: dict[str, Any], plugins: dict[str, Any]) -> None:
    bundle = build(sections=data, plugins=plugins)
    files = read_bundle(bundle)["files"]
    expected = {f"{k}.json": v for k, v in data.items()}
    expected |= {f"plugins/{k}.json": v for k, v in plugins.items()}
    assert files == expected
    raw = members(bundle)
    for name, value in expected.items():  # exactly json.dumps' format, byte for byte
        text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)
        assert raw[name] == text.encode()
    assert build(sections=data, plugins=plugins) == bundle


KNOWN = st.sampled_from(["customer", "events", "consents", "preferences", "requests"])
# The field names the summary looks for, so that odd values land where it reads them.
FIELDS = st.sampled_from(
    [
        "identities",
        "attributes",
        "region",
        "created_at",
        "current",
        "history",
        "purpose",
        "channel",
        "decision",
        "recorded_at",
        "expires_at",
        "notice_text",
        "language",
        "actor",
        "source",
        "name",
        "occurred_at",
        "properties",
        "id",
        "type",
        "regulation",
        "received_at",
        "due",
        "completed_at",
        "changes",
        "channels",
        "topics",
        "quiet_hours",
        "start",
        "end",
        "timezone",
        "frequency_cap_per_week",
    ]
)
SHAPED = st.recursive(
    LEAVES | st.datetimes(timezones=st.just(UTC) | st.none()),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(FIELDS | st.text(), inner, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(KNOWN, SHAPED, max_size=5))
def test_the_summary_survives_any_shape_of_known_sections(data: dict[str, Any]) -> None:
    files = read_bundle(build(sections=data, plugins={}))["files"]
    assert sorted(files) == sorted(f"{k}.json" for k in data)


@settings(max_examples=500, deadline=None)
@given(
    moment=st.datetimes(
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]) | st.none()
    )
)
def test_datetimes_are_written_as_isoformat(moment: datetime) -> None:
    bundle = build(sections={"times": {"at": moment, "day": moment.date(), "t": moment.time()}})
    assert read_bundle(bundle)["files"]["times.json"] == {
        "at": moment.isoformat(),
        "day": moment.date().isoformat(),
        "t": moment.time().isoformat(),
    }


# -- golden files: the summary page and manifest, byte for byte --------------------------------

GOLDEN = Path(__file__).parent / "golden"
ODD_EVENTS: list[Any] = [
    event("b", T0 + timedelta(hours=1)),
    {"name": "a", "occurred_at": "2030-01-01T00:00:00+00:00"},
    {"name": None, "occurred_at": None},
    {"occurred_at": datetime(2031, 1, 1)},
    "not an event",
]
GOLDEN_CASES: dict[str, Callable[[], bytes]] = {
    "full": build,
    "odd": lambda: build(
        sections={**sections(events=ODD_EVENTS), "loyalty_tier": ["gold"]},
        controller={"name": "Ex", "dpo": "dpo@example.com"},
    ),
    "empty": lambda: build(sections={}, plugins={}, controller={}),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_the_bundle_matches_its_golden_files(case: str) -> None:
    """The summary page and the manifest (which holds every other file's SHA-256) are exactly
    what the bundle builder wrote when these files were made: a refactoring changes no byte."""
    files = members(GOLDEN_CASES[case]())
    assert files["summary.html"] == (GOLDEN / f"bundle_{case}.html").read_bytes()
    assert files["manifest.json"] == (GOLDEN / f"bundle_{case}.manifest.json").read_bytes()
