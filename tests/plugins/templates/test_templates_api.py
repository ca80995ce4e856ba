"""The templates plugin over HTTP on both engines: CRUD with scopes and audit, strict mode at
save time, per-customer preview through the gate (only the view's fields; refusal without
consent, audited), and the DSR hooks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import consentry_templates
import httpx
import pytest

from consentry.testing import Service, running_service

BASE = "/v1/plugins/templates"
PROBLEM = "application/problem+json"
WELCOME = {
    "name": "welcome",
    "kind": "html",
    "subject": "Welcome, {{ customer.first_name | default: 'friend' }}",
    "body": "<p>Hi {{ customer.first_name | default: 'there' }} from"
    " {{ customer.city | default: 'your city' }}!</p>\n"
    "<p>Plan: {{ customer.plan | upcase }}</p>\n"
    "<footer>{{ company.name }} - {{ company.policy_url }}</footer>",
}
ATTRIBUTES = {
    "first_name": "<b>Ada</b>",  # identity: personalization uses it
    "plan": "pro",  # profile
    "city": "Lyon",  # location: personalization uses it
    "monthly_spend": 120,  # financial: personalization does not
}


@pytest.fixture
async def service(database_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(
        ("templates", consentry_templates), database_url=database_url, tmp_path=tmp_path
    ) as running:
        yield running


async def create(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    r = await client.post(f"{BASE}/", json={**WELCOME, **changes})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def key_with(service: Service, *scopes: str) -> dict[str, str]:
    r = await service.client.post("/v1/api-keys", json={"name": "k", "scopes": list(scopes)})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


async def audit(service: Service, action: str) -> list[dict[str, Any]]:
    return await service.core.db.fetch(
        "SELECT actor, action, target, details FROM audit_log WHERE action = ? ORDER BY seq",
        action,
    )


# -- CRUD ---------------------------------------------------------------------------------------


async def test_create_read_update_delete_each_audited(service: Service) -> None:
    client = service.client
    made = await create(client)
    assert made["capability"] == "templates.render" and made["purposes"] == ["personalization"]
    assert (made["version"], made["strict"], made["kind"]) == (1, True, "html")
    tid = made["id"]

    r = await client.get(f"{BASE}/{tid}")
    assert r.status_code == 200 and r.json()["body"] == WELCOME["body"]

    r = await client.put(f"{BASE}/{tid}", json={**WELCOME, "body": "Bye {{ customer.plan }}"})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["body"]) == (2, "Bye {{ customer.plan }}")

    r = await client.delete(f"{BASE}/{tid}")
    assert r.status_code == 200 and r.json()["id"] == tid
    for method in ("GET", "DELETE"):
        r = await client.request(method, f"{BASE}/{tid}")
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await client.get(f"{BASE}/not-a-uuid")
    assert r.status_code == 404

    for action in ("template.created", "template.updated", "template.deleted"):
        rows = await audit(service, action)
        assert len(rows) == 1 and rows[0]["target"] == f"template:{tid}"
        assert rows[0]["actor"].startswith("key:")
        assert json.loads(rows[0]["details"])["name"] == "welcome"


async def test_list_pages_by_name_and_names_are_unique(service: Service) -> None:
    for name in ("c", "a", "e", "b", "d"):
        await create(service.client, name=name)
    r = await service.client.post(f"{BASE}/", json={**WELCOME, "name": "a"})
    assert r.status_code == 409 and r.json()["field"] == "name"
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await service.client.get(f"{BASE}/", params=params)
        assert r.status_code == 200, r.text
        seen += [t["name"] for t in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["a", "b", "c", "d", "e"]


async def test_scopes(service: Service) -> None:
    made = await create(service.client)
    reader = await key_with(service, "backend:read")
    compliance = await key_with(service, "compliance:read")
    r = await service.client.post(f"{BASE}/", json={**WELCOME, "name": "x"}, headers=reader)
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await service.client.delete(f"{BASE}/{made['id']}", headers=reader)
    assert r.status_code == 403
    assert (await service.client.get(f"{BASE}/{made['id']}", headers=reader)).status_code == 200
    assert (await service.client.get(f"{BASE}/", headers=compliance)).status_code == 403
    r = await service.client.get(f"{BASE}/", headers={"Authorization": ""})
    assert r.status_code == 401


async def test_create_is_idempotent_with_a_key(service: Service) -> None:
    headers = {"Idempotency-Key": "tpl-1"}
    first = await service.client.post(f"{BASE}/", json=WELCOME, headers=headers)
    again = await service.client.post(f"{BASE}/", json=WELCOME, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert len((await service.client.get(f"{BASE}/")).json()["items"]) == 1


# -- strict mode at save time ---------------------------------------------------------------


async def test_strict_save_reports_unknown_variables_with_lines(service: Service) -> None:
    body = (
        "Hi {{ customer.first_name }}\nYou spent {{ customer.monthly_spend }}\n{{ custmer.plan }}"
    )
    r = await service.client.post(f"{BASE}/", json={**WELCOME, "body": body})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["field"] == "body"
    assert "customer.monthly_spend (line 2): category 'financial'" in problem["detail"]
    assert "custmer.plan (line 3): unknown variable" in problem["detail"]
    assert (await service.client.get(f"{BASE}/")).json()["items"] == []
    # the same update is refused too, and a lax template with it is saved
    made = await create(service.client)
    r = await service.client.put(f"{BASE}/{made['id']}", json={**WELCOME, "body": body})
    assert r.status_code == 422 and r.json()["field"] == "body"
    lax = await create(service.client, name="lax", body=body, strict=False)
    assert lax["strict"] is False


async def test_unsafe_templates_are_refused_at_save(service: Service) -> None:
    for body in ("{% include 'x' %}", "{{ customer.plan | safe }}", "{% if %}"):
        r = await service.client.post(f"{BASE}/", json={**WELCOME, "body": body})
        assert r.status_code == 422 and r.json()["field"] == "body", r.text
    r = await service.client.post(f"{BASE}/", json={**WELCOME, "kind": "pdf"})
    assert r.status_code == 422


# -- preview through the gate -----------------------------------------------------------------


async def preview(service: Service, tid: str, external_id: str) -> httpx.Response:
    return await service.client.post(f"{BASE}/{tid}/preview", json={"external_id": external_id})


async def test_preview_renders_only_the_gates_view(service: Service) -> None:
    sid = await service.customer(
        "c-1",
        attributes=ATTRIBUTES,
        identities={"email": "ada@example.com"},
        consents={"personalization": "granted"},
    )
    body = (
        WELCOME["body"]
        + "\n[{{ customer.monthly_spend | default: 'n/a' }}]"
        + ("[{{ contact.email }}][{{ customer.last_name | default: '-' }}]")
    )
    made = await create(service.client, body=body, strict=False)
    r = await preview(service, made["id"], "c-1")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["subject"] == "Welcome, <b>Ada</b>"  # the subject is text: not escaped
    assert "Hi &lt;b&gt;Ada&lt;/b&gt; from Lyon!" in out["body"]  # html body: escaped
    assert (
        "Plan: PRO" in out["body"] and "Example Inc. - https://example.com/privacy" in out["body"]
    )
    # financial and contact data are not in the view: fallback and empty, never the values
    assert out["body"].endswith("[n/a][][-]")
    assert "120" not in out["body"] and "ada@example.com" not in out["body"]
    assert out["withheld"] == ["contact.email", "customer.monthly_spend"]
    assert out["missing"] == ["customer.last_name"]
    assert (out["capability"], out["purposes"]) == ("templates.render", ["personalization"])

    views = await audit(service, "plugin.view")
    assert len(views) == 1 and views[0]["actor"] == "plugin:templates"
    assert views[0]["target"] == f"subject:{sid}"
    assert "Ada" not in views[0]["details"]


async def test_preview_without_consent_is_refused_with_the_reason(service: Service) -> None:
    await service.customer("c-2", attributes=ATTRIBUTES)  # EU: opt-in, nothing granted
    await service.customer("c-3", attributes=ATTRIBUTES, consents={"personalization": "granted"})
    await service.record(await service.customer("c-3"), "EU", {"personalization": "withdrawn"})
    made = await create(service.client)
    for external_id in ("c-2", "c-3"):
        r = await preview(service, made["id"], external_id)
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM, r.text
        assert "templates.render is not allowed for this customer" in r.json()["detail"]
        assert "personalization" in r.json()["detail"]
        assert "Ada" not in r.text
    assert "withdrawn" in r.json()["detail"]
    assert len(await audit(service, "plugin.view_refused")) == 2
    assert await audit(service, "plugin.view") == []
    r = await preview(service, made["id"], "nobody")
    assert r.status_code == 404


async def test_preview_stops_a_runaway_template(service: Service) -> None:
    await service.customer("c-4", attributes=ATTRIBUTES, consents={"personalization": "granted"})
    made = await create(service.client, body="{% for i in (1..100000000) %}{{ i }}{% endfor %}")
    r = await preview(service, made["id"], "c-4")
    assert r.status_code == 422 and r.json()["field"] == "body"
    assert "loop iteration limit reached" in r.json()["detail"]


async def test_an_updated_template_previews_its_new_text(service: Service) -> None:
    await service.customer("c-5", attributes=ATTRIBUTES, consents={"personalization": "granted"})
    made = await create(service.client, kind="text", body="v1 {{ customer.plan }}")
    assert (await preview(service, made["id"], "c-5")).json()["body"] == "v1 pro"
    r = await service.client.put(
        f"{BASE}/{made['id']}", json={**WELCOME, "kind": "text", "body": "v2 {{ customer.city }}"}
    )
    assert r.status_code == 200
    assert (await preview(service, made["id"], "c-5")).json()["body"] == "v2 Lyon"


# -- DSR hooks -------------------------------------------------------------------------------


async def test_dsr_hooks_hold_nothing_per_customer(service: Service) -> None:
    sid = await service.customer("c-6", attributes=ATTRIBUTES)
    await create(service.client)
    context = service.context("templates")
    assert await consentry_templates.dsr_export(sid, context) == {}
    assert await consentry_templates.dsr_erase(sid, context) == 0
    assert await consentry_templates.dsr_erase(sid, context) == 0  # idempotent
    assert len((await service.client.get(f"{BASE}/")).json()["items"]) == 1
