"""The docs pages load nothing from another host: their scripts, styles and icon are served here."""

from __future__ import annotations

import re

import httpx
import pytest

PAGES = ["/schema", "/schema/swagger", "/schema/redoc"]
REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']*)["']""")
TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


async def page_references(client: httpx.AsyncClient, page: str) -> list[str]:
    r = await client.get(page)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    return REFERENCE.findall(r.text)


@pytest.mark.parametrize("page", PAGES)
async def test_docs_pages_reference_only_this_service(client: httpx.AsyncClient, page: str) -> None:
    """Every src and href is a path on this service: no CDN, no web fonts."""
    references = await page_references(client, page)
    assert references, "the page loads its assets from somewhere"
    foreign = [u for u in references if not u.startswith("/") or u.startswith("//")]
    assert not foreign, foreign


@pytest.mark.parametrize("page", PAGES)
async def test_docs_assets_are_served(client: httpx.AsyncClient, page: str) -> None:
    """Each asset a page names answers 200 with its content type, without a credential."""
    references = await page_references(client, page)
    wrong = []
    for url in references:
        r = await client.get(url, headers={"Authorization": ""})
        expected = TYPES[url[url.rindex(".") :]]
        if r.status_code != 200 or expected not in r.headers.get("content-type", ""):
            wrong.append(f"{url}: {r.status_code} {r.headers.get('content-type')}")
        elif len(r.content) < 100:
            wrong.append(f"{url}: {len(r.content)} bytes")
    assert not wrong, wrong
