"""The summary page of an export bundle: a self-contained page a person can read and print.

The page is `templates/export_summary.html`; the views (`bundle_views`) turn the bundle's
sections into the display strings it shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jinja2

from consentry.dsr.bundle_files import FORMAT, MANIFEST, SUMMARY
from consentry.dsr.bundle_views import (
    cell,
    consents_view,
    controller_view,
    count,
    customer_view,
    events_view,
    holds,
    preferences_view,
    requests_view,
    when_text,
)

KNOWN_SECTIONS = ("customer", "events", "consents", "preferences", "requests")

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

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("consentry.dsr", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_summary(
    *,
    request_id: str,
    external_id: str,
    generated_at: datetime,
    controller: Mapping[str, Any],
    sections: Mapping[str, Any],
    plugins: Mapping[str, Any],
    plugin_texts: Mapping[str, str],
) -> str:
    """The page for one bundle; `plugin_texts` holds each plugin's file as written."""
    others = [name for name in sorted(sections) if name not in KNOWN_SECTIONS]
    return _TEMPLATES.get_template("export_summary.html").render(
        format=FORMAT,
        request_id=request_id,
        external_id=external_id,
        generated_at=when_text(generated_at),
        controller=controller_view(controller),
        controller_name=cell(controller.get("name")) if controller.get("name") else "us",
        customer=customer_view(sections.get("customer")),
        consents=consents_view(sections.get("consents")),
        preferences=preferences_view(sections.get("preferences")),
        events=events_view(sections.get("events")),
        requests=requests_view(sections.get("requests")),
        other_sections=[(name, count(sections[name])) for name in others],
        plugins=[
            {"name": name, "text": plugin_texts[name] if holds(plugins[name]) else ""}
            for name in sorted(plugins)
        ],
        contents=_contents(sections, others, plugins),
    )


def _contents(
    sections: Mapping[str, Any], others: list[str], plugins: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Each file of the bundle and what it holds, in the order the page lists them."""
    known = [f"{name}.json" for name in KNOWN_SECTIONS if name in sections]
    return [
        *[(file, _KNOWN_FILES[file]) for file in known],
        *[(f"{name}.json", f"further data about you: {name.replace('_', ' ')}") for name in others],
        *[
            (f"plugins/{name}.json", f"the data the {name} extension holds about you")
            for name in sorted(plugins)
        ],
        (SUMMARY, "this page: a readable overview of everything above"),
        (MANIFEST, "the list of files, with a checksum of each to show it is unaltered"),
    ]
