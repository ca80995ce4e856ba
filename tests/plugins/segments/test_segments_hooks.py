"""The plugin's hooks: capability and routes registered, DSR export and erase, and the plugin
as loaded through entry points with the default policy (which refuses event filters)."""

from __future__ import annotations

import consentry_segments
import httpx

from consentry.core.runtime import Core
from consentry.customers.records import resolve
from consentry.host.manager import Plugins

from .test_segments_api import BASE, create, customer, grant

Client = httpx.AsyncClient


def test_registrations() -> None:
    plugins = Plugins.of(("segments", consentry_segments))
    owner, capability = plugins.registry.capabilities["segments.membership"]
    assert owner == "segments" and capability.purposes == ("marketing_email",)
    assert [t._meta.tablename for _, t in plugins.registry.tables] == ["segments_definitions"]


async def test_dsr_export_and_erase(seg_client: Client, seg_core: Core) -> None:
    """The plugin holds nothing about a customer (memberships are evaluated, never stored):
    export is empty and erase removes nothing, twice, even for a member of a segment."""
    await customer(seg_client, "a", "EU", plan="pro")
    await grant(seg_core, "a")
    segment = await create(seg_client, {"attr": "plan", "op": "=", "value": "pro"}, name="pros")
    subject_id, _ = await resolve(seg_core, "a")
    members = (await seg_client.get(f"{BASE}/{segment['id']}/members")).json()["items"]
    assert members == [str(subject_id)]
    context = seg_core.plugin_context("segments")
    assert await consentry_segments.dsr_export(subject_id, context) == {}
    assert await consentry_segments.dsr_erase(subject_id, context) == 0
    assert await consentry_segments.dsr_erase(subject_id, context) == 0


async def test_default_policy_through_entry_points(client: Client) -> None:
    """The installed plugin, default policy: profile filters work, event filters are refused
    because marketing_email does not use behavior data."""
    r = await client.get("/v1/plugins")
    assert "segments" in [p["name"] for p in r.json()["items"]]
    r = await client.post(
        BASE + "/preview",
        json={"purpose": "marketing_email", "filter": {"attr": "plan", "op": "=", "value": "pro"}},
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        BASE + "/preview",
        json={
            "purpose": "marketing_email",
            "filter": {"and": [{"events": {"name": "feature_used"}, "op": ">=", "value": 1}]},
        },
    )
    assert r.status_code == 422
    assert r.json()["field"] == "filter.and[0].events"
    assert "events are behavior data" in r.json()["detail"]
