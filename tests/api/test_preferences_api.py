"""Preferences over the API on both engines: merge on patch, clearing, validation by field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

Client = httpx.AsyncClient
URL = "/v1/customers/c-1/preferences"


@pytest.fixture
async def customer(client: Client) -> str:
    r = await client.put("/v1/customers/c-1", json={"region": "EU"})
    assert r.status_code == 201, r.text
    return "c-1"


async def patch(client: Client, body: dict[str, Any]) -> httpx.Response:
    return await client.patch(URL, json=body)


async def test_empty_preferences_at_first(client: Client, customer: str) -> None:
    """A new customer has no preferences set."""
    r = await client.get(URL)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "channels": {},
        "topics": {},
        "quiet_hours": None,
        "language": None,
        "frequency_cap_per_week": None,
    }


async def test_patch_merges(client: Client, customer: str) -> None:
    """Maps merge key by key and fields not sent are kept."""
    r = await patch(
        client,
        {
            "channels": {"email": True, "sms": False},
            "topics": {"newsletter": True},
            "quiet_hours": {"start": "22:00", "end": "07:30", "timezone": "Asia/Tokyo"},
            "language": "ja",
            "frequency_cap_per_week": 3,
        },
    )
    assert r.status_code == 200, r.text
    r = await patch(client, {"channels": {"email": False, "push": True}, "topics": {"tips": False}})
    assert r.status_code == 200, r.text
    expected = {
        "channels": {"email": False, "sms": False, "push": True},
        "topics": {"newsletter": True, "tips": False},
        "quiet_hours": {"start": "22:00", "end": "07:30", "timezone": "Asia/Tokyo"},
        "language": "ja",
        "frequency_cap_per_week": 3,
    }
    assert r.json() == expected
    r = await client.get(URL)
    assert r.json() == expected


async def test_null_clears(client: Client, customer: str) -> None:
    """null clears quiet_hours (and language, frequency cap) while other fields stay."""
    await patch(
        client,
        {
            "channels": {"email": True},
            "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"},
            "language": "en",
            "frequency_cap_per_week": 5,
        },
    )
    r = await patch(client, {"quiet_hours": None})
    assert r.status_code == 200, r.text
    assert r.json()["quiet_hours"] is None
    assert r.json()["language"] == "en"
    assert r.json()["frequency_cap_per_week"] == 5
    assert r.json()["channels"] == {"email": True}
    r = await patch(client, {"language": None, "frequency_cap_per_week": None})
    assert r.json()["language"] is None and r.json()["frequency_cap_per_week"] is None
    r = await client.get(URL)
    assert r.json()["quiet_hours"] is None
    assert r.json()["channels"] == {"email": True}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}},
            "quiet_hours.timezone",
        ),
        (
            {"quiet_hours": {"start": "25:00", "end": "07:00", "timezone": "UTC"}},
            "quiet_hours.start",
        ),
        ({"quiet_hours": {"start": "22:00", "end": "7:00", "timezone": "UTC"}}, "quiet_hours.end"),
        ({"channels": {"pigeon": True}}, "channels.pigeon"),
        ({"topics": {"horoscope": True}}, "topics.horoscope"),
        ({"language": "fr"}, "language"),
        ({"frequency_cap_per_week": -1}, "frequency_cap_per_week"),
    ],
)
async def test_invalid_patch_names_the_field(
    client: Client, customer: str, body: dict[str, Any], field: str
) -> None:
    """An invalid value is a 422 whose field names what is wrong, and nothing changes."""
    before = (await client.get(URL)).json()
    r = await patch(client, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field, r.json()
    assert (await client.get(URL)).json() == before


async def test_unknown_customer_is_404(client: Client) -> None:
    """Preferences of an unknown customer: 404 on read and on patch."""
    assert (await client.get("/v1/customers/ghost/preferences")).status_code == 404
    r = await client.patch("/v1/customers/ghost/preferences", json={"language": "en"})
    assert r.status_code == 404
