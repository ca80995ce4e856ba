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
Every problem is a `BundleError` whose message starts with the file concerned. The files'
names and JSON are `bundle_files`; the summary page is `bundle_page`.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from datetime import UTC, datetime
from typing import Any

from consentry.dsr.bundle_files import (
    FORMAT,
    MANIFEST,
    PLUGIN_NAME,
    RESERVED_SECTIONS,
    SECTION_NAME,
    SUMMARY,
    BundleError,
    allowed_file_name,
    dumps,
    media_type,
    utf8,
)
from consentry.dsr.bundle_page import render_summary

__all__ = ["FORMAT", "BundleError", "build_bundle", "read_bundle"]

MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_FILE_MODE = 0o100644  # a regular file, rw-r--r--
_UNIX = 3  # ZipInfo.create_system: the external attributes are Unix permissions


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
        if not isinstance(name, str) or not SECTION_NAME.fullmatch(name):
            raise BundleError(
                f"{name!r}.json: a section name is 1-64 characters, a-z, 0-9 and '_',"
                " starting with a letter"
            )
        if name in RESERVED_SECTIONS:
            raise BundleError(f"{name}.json: '{name}' is reserved and cannot be a section name")
        files[f"{name}.json"] = dumps(data, f"{name}.json")
    for name, data in plugins.items():
        if not isinstance(name, str) or not PLUGIN_NAME.fullmatch(name):
            raise BundleError(
                f"plugins/{name!r}.json: a plugin name is 1-64 characters, a-z, 0-9, '_' and"
                " '-', starting with a letter"
            )
        files[f"plugins/{name}.json"] = dumps(data, f"plugins/{name}.json")

    files[SUMMARY] = utf8(
        render_summary(
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
                "media_type": media_type(name),
            }
            for name, content in sorted(files.items())
        ],
    }
    manifest_bytes = dumps(manifest, MANIFEST)

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
        if not allowed_file_name(name):
            raise BundleError(f"{name}: not a file name a bundle can hold")
        if name in listed:
            raise BundleError(f"{name}: listed twice in {MANIFEST}")
        sha = item.get("sha256")
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise BundleError(f"{name}: {MANIFEST} gives no valid sha256")
        size = item.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BundleError(f"{name}: {MANIFEST} gives no valid size in bytes")
        if item.get("media_type") != media_type(name):
            raise BundleError(
                f"{name}: {MANIFEST} gives media type {item.get('media_type')!r},"
                f" expected {media_type(name)!r}"
            )
        listed[name] = item
    if SUMMARY not in listed:
        raise BundleError(f"{SUMMARY}: not listed in {MANIFEST}")
    return listed
