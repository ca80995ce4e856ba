"""Names entering over the API (event names and property keys, attribute keys, API key names,
segment and template names) are refused with 422 when they hold control or invisible
characters, naming the code point; they are stored NFC-normalised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

RLO = "\u202e"
ZWSP = "\u200b"

# (method, path, body holding the name `n`)
CASES: dict[str, tuple[str, str, Callable[[str], dict[str, Any]]]] = {
    "event name": ("POST", "/v1/customers/n-1/events", lambda n: {"name": n}),
    "event property key": (
        "POST",
        "/v1/customers/n-1/events",
        lambda n: {"name": "signed_up", "properties": {n: 1}},
    ),
    "batch event name": (
        "POST",
        "/v1/events",
        lambda n: {"events": [{"external_id": "n-1", "name": n}]},
    ),
    "attribute key": ("PUT", "/v1/customers/n-1", lambda n: {"attributes": {n: "x"}}),
    "api key name": ("POST", "/v1/api-keys", lambda n: {"name": n, "scopes": ["backend:read"]}),
    "segment name": (
        "POST",
        "/v1/plugins/segments",
        lambda n: {
            "name": n,
            "purpose": "marketing_email",
            "filter": {"attr": "plan", "op": "=", "value": "pro"},
        },
    ),
    "template name": (
        "POST",
        "/v1/plugins/templates",
        lambda n: {"name": n, "body": "Hi", "subject": "Hello"},
    ),
}


@pytest.mark.parametrize(
    "bad", [f"pl{RLO}an", f"pl{ZWSP}an", "pl\x07an"], ids=["rlo", "zwsp", "bel"]
)
@pytest.mark.parametrize("case", list(CASES))
async def test_a_name_with_an_invisible_character_is_refused(
    client: httpx.AsyncClient, case: str, bad: str
) -> None:
    """The answer is 422 problem+json naming the refused code point."""
    await client.put("/v1/customers/n-1", json={"region": "EU"})
    method, path, body = CASES[case]
    r = await client.request(method, path, json=body(bad))
    assert r.status_code == 422, r.text
    code_point = f"U+{ord(bad[2]):04X}"
    assert code_point in r.json()["detail"], r.text


async def test_an_api_key_name_is_stored_nfc_normalised(client: httpx.AsyncClient) -> None:
    """An API key named with a decomposed accent is listed composed."""
    r = await client.post("/v1/api-keys", json={"name": "cafe\u0301", "scopes": ["backend:read"]})
    assert r.status_code == 201, r.text
    r = await client.get("/v1/api-keys")
    assert r.status_code == 200, r.text
    assert "caf\u00e9" in [k["name"] for k in r.json()["items"]]
