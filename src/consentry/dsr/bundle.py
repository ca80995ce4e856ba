"""The data-subject export bundle: GDPR Art. 15 (access) and 20 (portability), CCPA right to know.

A bundle is a ZIP archive:

    manifest.json         what the bundle is (format, request, customer, controller, time) and
                          every other file's name, SHA-256, size and media type, sorted by name
    <section>.json        one file per section of data (customer, events, consents, ...)
    plugins/<name>.json   what each plugin holds about the customer
    summary.html          a self-contained page a person can read and print

`build_bundle` is pure and deterministic: the same inputs give byte-identical output (fixed
entry order, timestamps taken from `generated_at`, fixed permissions, fixed compression).
`read_bundle` checks a bundle against its manifest, file by file, and returns the parsed JSON.
Every problem is a `BundleError` whose message starts with the file concerned.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from uuid import UUID

import jinja2
import msgspec

__all__ = ["FORMAT", "BundleError", "build_bundle", "read_bundle"]

FORMAT = "consentry-export/1"

MANIFEST = "manifest.json"
SUMMARY = "summary.html"
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
EVENTS_SHOWN = 100  # rows in the summary's event table; the full list is in events.json

_SECTION_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_RESERVED_SECTIONS = frozenset({"manifest"})  # manifest.json is the manifest's own file
_FILE_MODE = 0o100644  # a regular file, rw-r--r--
_UNIX = 3  # ZipInfo.create_system: the external attributes are Unix permissions


class BundleError(ValueError):
    """A bundle that cannot be built or does not check out; the message names the file."""


# -- building -----------------------------------------------------------------------------------


def build_bundle(
    *,
    request_id: str,
    external_id: str,
    generated_at: datetime,
    controller: dict[str, str],
    sections: dict[str, Any],
    plugins: dict[str, Any],
) -> bytes:
    """The ZIP bundle for one access or portability request (see the module docstring)."""
    if generated_at.tzinfo is None or generated_at.utcoffset() is None:
        raise BundleError(f"{MANIFEST}: generated_at must be a timezone-aware datetime")
    generated = generated_at.astimezone(UTC)

    files: dict[str, bytes] = {}
    for name, data in sections.items():
        if not isinstance(name, str) or not _SECTION_NAME.fullmatch(name):
            raise BundleError(
                f"{name!r}.json: a section name is 1-64 characters, a-z, 0-9 and '_',"
                " starting with a letter"
            )
        if name in _RESERVED_SECTIONS:
            raise BundleError(f"{name}.json: '{name}' is reserved and cannot be a section name")
        files[f"{name}.json"] = _dumps(data, f"{name}.json")
    for name, data in plugins.items():
        if not isinstance(name, str) or not _PLUGIN_NAME.fullmatch(name):
            raise BundleError(
                f"plugins/{name!r}.json: a plugin name is 1-64 characters, a-z, 0-9, '_' and"
                " '-', starting with a letter"
            )
        files[f"plugins/{name}.json"] = _dumps(data, f"plugins/{name}.json")

    files[SUMMARY] = _utf8(
        _render_summary(
            request_id=request_id,
            external_id=external_id,
            generated_at=generated,
            controller=controller,
            sections=sections,
            plugins=plugins,
            plugin_texts={n: files[f"plugins/{n}.json"].decode() for n in plugins},
        ),
        SUMMARY,
    )

    manifest = {
        "format": FORMAT,
        "request_id": request_id,
        "external_id": external_id,
        "generated_at": generated.isoformat(),
        "controller": controller,
        "files": [
            {
                "name": name,
                "sha256": hashlib.sha256(content).hexdigest(),
                "bytes": len(content),
                "media_type": _media_type(name),
            }
            for name, content in sorted(files.items())
        ],
    }
    manifest_bytes = _dumps(manifest, MANIFEST)

    stamp = _zip_time(generated)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in [(MANIFEST, manifest_bytes), *sorted(files.items())]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = _UNIX
            info.external_attr = _FILE_MODE << 16
            archive.writestr(info, content)
    return out.getvalue()


def _json_default(value: Any, _encode: Callable[[Any], bytes] = msgspec.json.encode) -> Any:
    """Dates, times and UUIDs as ISO 8601 text; anything else is not JSON."""
    if type(value) is datetime and value.tzinfo is UTC:
        # The common case, tens of thousands of times per bundle: msgspec writes the same text
        # as isoformat() (with "Z" for "+00:00") in a tenth of the time.
        return _encode(value)[1:-2].decode() + "+00:00"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"a value of type {type(value).__name__} is not JSON-serialisable")


def _dumps(data: Any, file: str) -> bytes:
    """Data as UTF-8 JSON, exactly as `json.dumps(..., indent=2, sort_keys=True,
    ensure_ascii=False)` writes it.

    The standard library's indenting encoder is pure Python and too slow for tens of thousands
    of events, so its C encoder writes the data compactly (what is serialisable, and how, is
    the standard library's) and msgspec only re-indents it, copying every token verbatim.
    """
    try:
        compact = json.dumps(
            data,
            ensure_ascii=False,
            separators=(",", ":"),
            sort_keys=True,
            allow_nan=False,
            default=_json_default,
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise BundleError(f"{file}: the data cannot be written as JSON: {exc}") from None
    return msgspec.json.format(_utf8(compact, file), indent=2)


def _utf8(text: str, file: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise BundleError(f"{file}: the text cannot be written as UTF-8: {exc}") from None


def _media_type(name: str) -> str:
    return HTML_TYPE if name.endswith(".html") else JSON_TYPE


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    """The archive entries' timestamp (ZIP stores local time from 1980 to 2107: UTC, clamped)."""
    if moment.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    if moment.year > 2107:
        return (2107, 12, 31, 23, 59, 58)
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


# -- reading ------------------------------------------------------------------------------------


def read_bundle(data: bytes) -> dict[str, Any]:
    """Check a bundle against its manifest; {"manifest": ..., "files": {name: parsed JSON}}.

    Every file must be listed in the manifest, every listed file present, with the listed size
    and SHA-256. "files" holds each JSON file other than the manifest (summary.html is checked
    but not returned). Anything wrong is a BundleError naming the file.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise BundleError(f"bundle: not a ZIP archive ({exc})") from None
    with archive:
        entries: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            if info.filename in entries:
                raise BundleError(f"{info.filename}: appears more than once in the archive")
            entries[info.filename] = info
        if MANIFEST not in entries:
            raise BundleError(f"{MANIFEST}: missing from the bundle")
        manifest_info = entries.pop(MANIFEST)
        raw_manifest = _read(archive, manifest_info, MAX_MANIFEST_BYTES)
        if len(raw_manifest) > MAX_MANIFEST_BYTES:
            raise BundleError(f"{MANIFEST}: larger than {MAX_MANIFEST_BYTES} bytes")
        manifest = _parse_json(raw_manifest, MANIFEST)
        listed = _check_manifest(manifest)

        for name in sorted(entries):
            if name not in listed:
                raise BundleError(f"{name}: present in the bundle but not listed in {MANIFEST}")
        files: dict[str, Any] = {}
        for name, item in listed.items():
            if name not in entries:
                raise BundleError(f"{name}: listed in {MANIFEST} but missing from the bundle")
            size = item["bytes"]
            content = _read(archive, entries[name], size)
            if len(content) != size:
                raise BundleError(f"{name}: the size does not match {MANIFEST} ({size} bytes)")
            if hashlib.sha256(content).hexdigest() != item["sha256"]:
                raise BundleError(f"{name}: the SHA-256 checksum does not match {MANIFEST}")
            if name.endswith(".json"):
                files[name] = _parse_json(content, name)
            else:
                _decode(content, name)
        return {"manifest": manifest, "files": files}


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """At most limit + 1 bytes of one entry: never more than the manifest accounts for."""
    try:
        with archive.open(info) as f:
            return f.read(limit + 1)
    except (
        zipfile.BadZipFile,  # a CRC mismatch, a damaged header
        zlib.error,
        EOFError,
        OSError,
        NotImplementedError,  # an unknown compression method
        RuntimeError,  # an encrypted entry
    ) as exc:
        raise BundleError(f"{info.filename}: cannot be read from the archive ({exc})") from None


def _decode(content: bytes, name: str) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{name}: not valid UTF-8 ({exc})") from None


def _no_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def _parse_json(content: bytes, name: str) -> Any:
    text = _decode(content, name)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise BundleError(f"{name}: not valid JSON ({exc})") from None


def _check_manifest(manifest: Any) -> dict[str, dict[str, Any]]:
    """The manifest's files by name, once its shape is checked."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{MANIFEST}: not a JSON object")
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{MANIFEST}: format is {manifest.get('format')!r}, expected {FORMAT!r}")
    for key in ("request_id", "external_id", "generated_at"):
        if not isinstance(manifest.get(key), str):
            raise BundleError(f"{MANIFEST}: {key} is missing or not a string")
    if not isinstance(manifest.get("controller"), dict):
        raise BundleError(f"{MANIFEST}: controller is missing or not an object")
    items = manifest.get("files")
    if not isinstance(items, list):
        raise BundleError(f"{MANIFEST}: files is missing or not a list")
    listed: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BundleError(f"{MANIFEST}: an entry of files has no name")
        name = item["name"]
        if not _allowed_file_name(name):
            raise BundleError(f"{name}: not a file name a bundle can hold")
        if name in listed:
            raise BundleError(f"{name}: listed twice in {MANIFEST}")
        sha = item.get("sha256")
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise BundleError(f"{name}: {MANIFEST} gives no valid sha256")
        size = item.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BundleError(f"{name}: {MANIFEST} gives no valid size in bytes")
        if item.get("media_type") != _media_type(name):
            raise BundleError(
                f"{name}: {MANIFEST} gives media type {item.get('media_type')!r},"
                f" expected {_media_type(name)!r}"
            )
        listed[name] = item
    if SUMMARY not in listed:
        raise BundleError(f"{SUMMARY}: not listed in {MANIFEST}")
    return listed


def _allowed_file_name(name: str) -> bool:
    if name == SUMMARY:
        return True
    if name.startswith("plugins/") and name.endswith(".json"):
        return bool(_PLUGIN_NAME.fullmatch(name[len("plugins/") : -len(".json")]))
    if name.endswith(".json"):
        stem = name[: -len(".json")]
        return bool(_SECTION_NAME.fullmatch(stem)) and stem not in _RESERVED_SECTIONS
    return False


# -- the summary page ---------------------------------------------------------------------------

_KNOWN_FILES = {
    "customer.json": "who you are to us: your identifiers (such as your email address) and the"
    " attributes we hold about you",
    "events.json": "every event recorded about you (for example a purchase or a login), with"
    " its details",
    "consents.json": "your current consent choices and the full history of every consent"
    " decision, with the notice you were shown",
    "preferences.json": "your current communication preferences and every change to them",
    "requests.json": "the privacy requests you have made to us (like this one) and their status",
}

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

_SUMMARY_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>Your data held by {{ controller_name }}</title>
<style>
  :root { --ink: #1a1a1a; --muted: #5a5a5a; --line: #c8c8c8; --yes: #0b6b2f; --no: #9b1c1c; }
  * { box-sizing: border-box; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: var(--ink); max-width: 64rem; margin: 2rem auto; padding: 0 1.25rem; }
  h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
  h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; padding-top: .75rem;
       border-top: 2px solid var(--ink); }
  h3 { font-size: 1rem; margin: 1.25rem 0 .4rem; }
  .sub, .note { color: var(--muted); }
  .note { font-size: .9em; }
  table { border-collapse: collapse; width: 100%; margin: .4rem 0 .8rem; }
  th, td { border: 1px solid var(--line); padding: .3rem .45rem; text-align: left;
           vertical-align: top; overflow-wrap: break-word; }
  th { background: #f2f2f2; font-weight: 600; }
  table.meta th { width: 14rem; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
                     font-size: .85em; }
  pre { background: #fafafa; border: 1px solid var(--line); padding: .5rem .75rem;
        white-space: pre-wrap; overflow-wrap: break-word; }
  blockquote { margin: .25rem 0; padding: .4rem .7rem; border-left: 4px solid var(--line);
               background: #fafafa; white-space: pre-wrap; }
  .yes { color: var(--yes); font-weight: 600; }
  .no { color: var(--no); font-weight: 600; }
  footer { margin-top: 2.5rem; padding-top: .75rem; border-top: 1px solid var(--line);
           color: var(--muted); font-size: .9em; }
  @media print {
    @page { size: A4; margin: 16mm 14mm; }
    body { margin: 0; max-width: none; font-size: 10pt; }
    h2, h3 { break-after: avoid; }
    tr, blockquote { break-inside: avoid; }
    th { background: #eee !important; -webkit-print-color-adjust: exact;
         print-color-adjust: exact; }
  }
</style>
</head>
<body>
<header>
  <h1>Your data held by {{ controller_name }}</h1>
  <p class="sub">A copy of the personal data we hold about you, made in answer to your request.
    It is a readable overview; the files in this bundle hold everything in full.</p>
  <table class="meta">
    <tr><th scope="row">Who holds your data (the &ldquo;controller&rdquo;)</th>
      <td>{{ controller_name }}
      {%- if controller.contact %} · contact: {{ controller.contact }}{% endif %}
      {%- if controller.policy_url %} · privacy policy: {{ controller.policy_url }}{% endif -%}
      </td></tr>
    {% for label, value in controller.other %}
    <tr><th scope="row">{{ label }}</th><td>{{ value }}</td></tr>
    {% endfor %}
    <tr><th scope="row">Your customer id</th><td class="mono">{{ external_id }}</td></tr>
    <tr><th scope="row">Your request</th><td class="mono">{{ request_id }}</td></tr>
    <tr><th scope="row">Prepared on</th><td>{{ generated_at }}</td></tr>
  </table>
</header>

<section>
<h2>Who you are to us</h2>
{% if customer.facts %}
<table class="meta">
  {% for label, value in customer.facts %}
  <tr><th scope="row">{{ label }}</th><td>{{ value }}</td></tr>
  {% endfor %}
</table>
{% endif %}
<h3>Your identifiers</h3>
{% if customer.identities %}
<table>
  <tr><th scope="col">Kind</th><th scope="col">Value</th></tr>
  {% for key, value in customer.identities %}
  <tr><td>{{ key }}</td><td>{{ value }}</td></tr>
  {% endfor %}
</table>
{% else %}
<p>We hold no identifiers for you.</p>
{% endif %}
<h3>Attributes</h3>
{% if customer.attributes %}
<table>
  <tr><th scope="col">Attribute</th><th scope="col">Value</th></tr>
  {% for key, value in customer.attributes %}
  <tr><td>{{ key }}</td><td>{{ value }}</td></tr>
  {% endfor %}
</table>
{% else %}
<p>We hold no other attributes about you.</p>
{% endif %}
</section>

<section>
<h2>Your consent choices</h2>
<h3>As they stand now</h3>
{% if consents.current %}
<table>
  <tr><th scope="col">Purpose</th><th scope="col">Channel</th><th scope="col">Your decision</th>
      <th scope="col">Legal basis</th><th scope="col">Notice version</th>
      <th scope="col">Since</th></tr>
  {% for c in consents.current %}
  <tr><td>{{ c.purpose }}</td><td>{{ c.channel }}</td>
      <td class="{{ c.css }}">{{ c.decision }}</td><td>{{ c.legal_basis }}</td>
      <td>{{ c.notice_version }}</td><td>{{ c.since }}
      {%- if c.expires %} (until {{ c.expires }}){% endif %}</td></tr>
  {% endfor %}
</table>
{% else %}
<p>You have no consent choices on record.</p>
{% endif %}
<h3>History, newest first</h3>
{% if consents.history %}
<table>
  <tr><th scope="col">When</th><th scope="col">Purpose</th><th scope="col">Channel</th>
      <th scope="col">Decision</th><th scope="col">Legal basis</th>
      <th scope="col">Notice version</th><th scope="col">How</th></tr>
  {% for h in consents.history %}
  <tr><td>{{ h.when }}</td><td>{{ h.purpose }}</td><td>{{ h.channel }}</td>
      <td class="{{ h.css }}">{{ h.decision }}</td><td>{{ h.legal_basis }}</td>
      <td>{{ h.notice_version }}{% if h.language %} ({{ h.language }}){% endif %}</td>
      <td>{{ h.source }}{% if h.actor %}, by {{ h.actor }}{% endif %}</td></tr>
  {% if h.notice_text %}
  <tr><td colspan="7"><span class="note">The notice you were shown:</span>
      <blockquote>{{ h.notice_text }}</blockquote></td></tr>
  {% endif %}
  {% endfor %}
</table>
{% else %}
<p>There is no consent history.</p>
{% endif %}
</section>

<section>
<h2>Your communication preferences</h2>
{% if preferences.current %}
<table class="meta">
  {% for label, value in preferences.current %}
  <tr><th scope="row">{{ label }}</th><td>{{ value }}</td></tr>
  {% endfor %}
</table>
{% else %}
<p>You have not set any preferences.</p>
{% endif %}
{% if preferences.history %}
<h3>Changes, newest first</h3>
<table>
  <tr><th scope="col">When</th><th scope="col">What changed</th><th scope="col">How</th></tr>
  {% for p in preferences.history %}
  <tr><td>{{ p.when }}</td><td class="mono">{{ p.changes }}</td>
      <td>{{ p.source }}{% if p.actor %}, by {{ p.actor }}{% endif %}</td></tr>
  {% endfor %}
</table>
{% endif %}
</section>

<section>
<h2>Events</h2>
{% if events.total %}
<p>We have recorded {{ events.total }} event{{ "" if events.total == 1 else "s" }} about you.
  The full list, with every detail, is in <code>events.json</code>.</p>
<h3>How many of each kind</h3>
<table>
  <tr><th scope="col">Event</th><th scope="col">Count</th></tr>
  {% for name, count in events.counts %}
  <tr><td>{{ name }}</td><td class="num">{{ count }}</td></tr>
  {% endfor %}
</table>
<h3>{% if events.total > events.shown | length %}The {{ events.shown | length }} most recent
  {%- else %}All events, newest first{% endif %}</h3>
<table>
  <tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">Details</th></tr>
  {% for e in events.shown %}
  <tr><td>{{ e.when }}</td><td>{{ e.name }}</td><td class="mono">{{ e.details }}</td></tr>
  {% endfor %}
</table>
{% if events.total > events.shown | length %}
<p class="note">Only the {{ events.shown | length }} most recent of {{ events.total }} events
  are shown here. The full list is in <code>events.json</code>.</p>
{% endif %}
{% else %}
<p>We have recorded no events about you.</p>
{% endif %}
</section>

<section>
<h2>Your privacy requests</h2>
{% if requests %}
<table>
  <tr><th scope="col">Request</th><th scope="col">Type</th><th scope="col">Law</th>
      <th scope="col">Status</th><th scope="col">Received</th><th scope="col">Due</th>
      <th scope="col">Completed</th></tr>
  {% for r in requests %}
  <tr><td class="mono">{{ r.id }}</td><td>{{ r.type }}</td><td>{{ r.regulation }}</td>
      <td>{{ r.state }}</td><td>{{ r.received }}</td><td>{{ r.due }}</td>
      <td>{{ r.completed }}</td></tr>
  {% endfor %}
</table>
{% else %}
<p>There are no privacy requests on record.</p>
{% endif %}
</section>

{% if other_sections %}
<section>
<h2>Other data</h2>
<table>
  <tr><th scope="col">Kind of data</th><th scope="col">Items</th><th scope="col">File</th></tr>
  {% for name, count in other_sections %}
  <tr><td>{{ name }}</td><td class="num">{{ count }}</td><td><code>{{ name }}.json</code></td>
  </tr>
  {% endfor %}
</table>
</section>
{% endif %}

<section>
<h2>Data held by extensions</h2>
{% if plugins %}
<p>These parts of our service keep data of their own about you:</p>
{% for p in plugins %}
<h3>{{ p.name }}</h3>
{% if p.text %}
<pre>{{ p.text }}</pre>
{% else %}
<p>Nothing held.</p>
{% endif %}
{% endfor %}
{% else %}
<p>No extension holds data about you.</p>
{% endif %}
</section>

<section>
<h2>What is in this bundle</h2>
<table>
  <tr><th scope="col">File</th><th scope="col">What it holds</th></tr>
  {% for name, purpose in contents %}
  <tr><td><code>{{ name }}</code></td><td>{{ purpose }}</td></tr>
  {% endfor %}
</table>
<p class="note">The data files are JSON, a plain-text format most software can read, so you can
  take them to another service. <code>manifest.json</code> lists each file with its SHA-256
  checksum, so anyone can check that nothing was changed after we prepared the bundle.</p>
</section>

<footer>Prepared by {{ controller_name }} on {{ generated_at }} for request
  <span class="mono">{{ request_id }}</span> ({{ format }}).</footer>
</body>
</html>
"""


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.from_string(_SUMMARY_TEMPLATE)


def _render_summary(
    *,
    request_id: str,
    external_id: str,
    generated_at: datetime,
    controller: Mapping[str, Any],
    sections: Mapping[str, Any],
    plugins: Mapping[str, Any],
    plugin_texts: Mapping[str, str],
) -> str:
    known = ("customer", "events", "consents", "preferences", "requests")
    contents = [
        (f"{name}.json", _KNOWN_FILES[f"{name}.json"]) for name in known if name in sections
    ]
    contents += [
        (f"{name}.json", f"further data about you: {name.replace('_', ' ')}")
        for name in sorted(sections)
        if name not in known
    ]
    contents += [
        (f"plugins/{name}.json", f"the data the {name} extension holds about you")
        for name in sorted(plugins)
    ]
    contents += [
        (SUMMARY, "this page: a readable overview of everything above"),
        (MANIFEST, "the list of files, with a checksum of each to show it is unaltered"),
    ]
    return _template().render(
        format=FORMAT,
        request_id=request_id,
        external_id=external_id,
        generated_at=_when_text(generated_at),
        controller=_controller_view(controller),
        controller_name=_text(controller.get("name")) if controller.get("name") else "us",
        customer=_customer_view(sections.get("customer")),
        consents=_consents_view(sections.get("consents")),
        preferences=_preferences_view(sections.get("preferences")),
        events=_events_view(sections.get("events")),
        requests=_requests_view(sections.get("requests")),
        other_sections=[
            (name, _count(sections[name])) for name in sorted(sections) if name not in known
        ],
        plugins=[
            {"name": name, "text": plugin_texts[name] if _holds(plugins[name]) else ""}
            for name in sorted(plugins)
        ],
        contents=contents,
    )


# The views below turn whatever the caller passed into rows of display strings. They never
# assume a shape: a section of an unexpected type renders as empty rather than failing the build.


def _as_dict(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [_as_dict(v) for v in _as_list(value)]


def _count(value: Any) -> int:
    if isinstance(value, Mapping | list | tuple):
        return len(value)
    return 0 if value is None else 1


def _holds(value: Any) -> bool:
    return not (value is None or (isinstance(value, Mapping | list | tuple | str) and not value))


def _when_text(value: Any) -> str:
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
    return _text(value)


def _text(value: Any) -> str:
    """One value as a short piece of text for a table cell."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date | time):
        return _when_text(value)
    if isinstance(value, int | float | UUID):
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_json_default)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _short(value: Any, limit: int = 300) -> str:
    text = "" if value is None or value == {} else _text(value)
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
    return [(key, _text(v)) for key, v in sorted(_as_dict(value).items())]


def _controller_view(controller: Mapping[str, Any]) -> dict[str, Any]:
    shown = {"name", "contact", "policy_url"}
    return {
        "contact": _text(controller["contact"]) if controller.get("contact") else "",
        "policy_url": _text(controller["policy_url"]) if controller.get("policy_url") else "",
        "other": [
            (key.replace("_", " ").capitalize(), _text(value))
            for key, value in sorted(_as_dict(controller).items())
            if key not in shown
        ],
    }


def _customer_view(customer: Any) -> dict[str, Any]:
    c = _as_dict(customer)
    facts = []
    if c.get("region") is not None:
        facts.append(("Region", _text(c["region"])))
    if c.get("created_at") is not None:
        facts.append(("Customer since", _when_text(c["created_at"])))
    if c.get("updated_at") is not None:
        facts.append(("Last updated", _when_text(c["updated_at"])))
    return {
        "facts": facts,
        "identities": _pairs(c.get("identities")),
        "attributes": _pairs(c.get("attributes")),
    }


def _decision(value: Any) -> tuple[str, str]:
    text = _text(value)
    css = {"granted": "yes", "denied": "no", "withdrawn": "no"}.get(text, "")
    return text, css


def _channel(value: Any) -> str:
    return "all channels" if value in ("", None) else _text(value)


def _consents_view(consents: Any) -> dict[str, Any]:
    c = _as_dict(consents)
    current = []
    for row in _dicts(c.get("current")):
        decision, css = _decision(row.get("decision"))
        current.append(
            {
                "purpose": _text(row.get("purpose")),
                "channel": _channel(row.get("channel")),
                "decision": decision,
                "css": css,
                "legal_basis": _text(row.get("legal_basis")),
                "notice_version": _text(row.get("notice_version")),
                "since": _when_text(row.get("recorded_at")),
                "expires": _when_text(row["expires_at"]) if row.get("expires_at") else "",
            }
        )
    history = []
    for row in _newest_first(_dicts(c.get("history")), "recorded_at"):
        decision, css = _decision(row.get("decision"))
        notice = row.get("notice_text")
        history.append(
            {
                "when": _when_text(row.get("recorded_at")),
                "purpose": _text(row.get("purpose")),
                "channel": _channel(row.get("channel")),
                "decision": decision,
                "css": css,
                "legal_basis": _text(row.get("legal_basis")),
                "notice_version": _text(row.get("notice_version")),
                "language": _text(row["language"]) if row.get("language") else "",
                "source": _text(row.get("source")).replace("_", " "),
                "actor": _text(row["actor"]) if row.get("actor") else "",
                "notice_text": _text(notice) if notice else "",
            }
        )
    return {"current": current, "history": history}


def _switches(value: Any) -> str:
    """{"email": true, "sms": false} -> "email: on, sms: off"."""
    d = _as_dict(value)
    if not d:
        return "—"
    return ", ".join(
        f"{k}: {('on' if v else 'off') if isinstance(v, bool) else _text(v)}"
        for k, v in sorted(d.items())
    )


def _preference_value(key: str, value: Any) -> str:
    if key in ("channels", "topics") and isinstance(value, Mapping):
        return _switches(value)
    if key == "quiet_hours" and isinstance(value, Mapping):
        zone = f" ({_text(value['timezone'])})" if value.get("timezone") else ""
        return f"{_text(value.get('start'))} to {_text(value.get('end'))}{zone}"
    return _text(value)


def _preferences_view(preferences: Any) -> dict[str, Any]:
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
                "when": _when_text(row.get("recorded_at")),
                "changes": _short(row.get("changes")),
                "source": _text(row.get("source")).replace("_", " "),
                "actor": _text(row["actor"]) if row.get("actor") else "",
            }
            for row in _newest_first(_dicts(p.get("history")), "recorded_at")
        ],
    }


def _events_view(events: Any) -> dict[str, Any]:
    # Tens of thousands of rows: one pass per column, and in the common case (every occurred_at
    # an aware UTC datetime) no Python function per row.
    rows = [e if type(e) is dict or isinstance(e, Mapping) else {} for e in _as_list(events)]
    names = [
        n if type(n) is str else ("(unnamed)" if n is None else _text(n))
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
            "when": _when_text(whens[i]),
            "name": names[i],
            "details": _short(rows[i].get("properties")),
        }
        for i in recent
    ]
    return {"total": len(rows), "counts": counts, "shown": shown}


def _requests_view(requests: Any) -> list[dict[str, str]]:
    def kind(value: Any) -> str:
        return _REQUEST_TYPES.get(value, _text(value)) if isinstance(value, str) else _text(value)

    return [
        {
            "id": _text(r.get("id")),
            "type": kind(r.get("type")),
            "regulation": _text(r.get("regulation")).upper() if r.get("regulation") else "—",
            "state": _text(r.get("state")).replace("_", " "),
            "received": _when_text(r.get("received_at")),
            "due": _when_text(r.get("due")),
            "completed": _when_text(r.get("completed_at")) if r.get("completed_at") else "—",
        }
        for r in _newest_first(_dicts(requests), "received_at")
    ]
