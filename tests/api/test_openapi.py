"""The OpenAPI document: committed and current, errors documented, authentication declared."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from litestar import post
from openapi_spec_validator import validate

from consentry.app import create_app
from consentry.cli import openapi_document
from consentry.http.openapi_document import document, readable_operation_id
from consentry.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "openapi" / "openapi.json"
PROBLEM = "application/problem+json"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Operations anyone may call, without a credential.
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/v1/purposes"),
    ("GET", "/v1/purposes/{name}"),
    ("POST", "/v1/confirmations"),
    ("GET", "/v1/exports/{token}"),  # the expiring download link is the credential
    ("POST", "/v1/verifications"),  # the emailed code is the credential
    ("POST", "/v1/verifications/confirm"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/consentry-audit-keys.pem"),
}


# The stable contract: clients generate method names from these, so one that changes breaks them.
# A new operation is added here with its id; plugin operations start with the plugin's name.
OPERATION_IDS = {
    ("GET", "/health"): "getHealth",
    ("GET", "/.well-known/jwks.json"): "getJwks",
    ("GET", "/.well-known/consentry-audit-keys.pem"): "getAuditKeysPem",
    ("GET", "/v1/purposes"): "listPurposes",
    ("GET", "/v1/purposes/{name}"): "getPurpose",
    ("GET", "/v1/api-keys"): "listApiKeys",
    ("POST", "/v1/api-keys"): "createApiKey",
    ("DELETE", "/v1/api-keys/{key_id}"): "revokeApiKey",
    ("GET", "/v1/customers"): "listCustomers",
    ("POST", "/v1/customers/search"): "searchCustomer",
    ("GET", "/v1/customers/{external_id}"): "getCustomer",
    ("PUT", "/v1/customers/{external_id}"): "upsertCustomer",
    ("POST", "/v1/customers/{external_id}/token"): "issueCustomerToken",
    ("GET", "/v1/customers/{external_id}/check"): "checkConsent",
    ("GET", "/v1/customers/{external_id}/consents"): "getConsents",
    ("POST", "/v1/customers/{external_id}/consents"): "recordConsents",
    ("GET", "/v1/customers/{external_id}/consents/history"): "getConsentHistory",
    ("GET", "/v1/customers/{external_id}/consents/{record_id}/receipt"): "getConsentReceipt",
    ("GET", "/v1/customers/{external_id}/consent-proof"): "getConsentProof",
    ("GET", "/v1/customers/{external_id}/consent-proof.html"): "getConsentProofPage",
    ("POST", "/v1/confirmations"): "confirmDoubleOptIn",
    ("GET", "/v1/customers/{external_id}/preferences"): "getPreferences",
    ("PATCH", "/v1/customers/{external_id}/preferences"): "updatePreferences",
    ("GET", "/v1/customers/{external_id}/events"): "listEvents",
    ("POST", "/v1/customers/{external_id}/events"): "recordEvent",
    ("POST", "/v1/events"): "recordEventBatch",
    ("GET", "/v1/me/consents"): "getMyConsents",
    ("POST", "/v1/me/consents"): "recordMyConsents",
    ("GET", "/v1/me/consents/history"): "getMyConsentHistory",
    ("GET", "/v1/me/consents/{record_id}/receipt"): "getMyConsentReceipt",
    ("GET", "/v1/me/preferences"): "getMyPreferences",
    ("PATCH", "/v1/me/preferences"): "updateMyPreferences",
    ("GET", "/v1/me/requests"): "listMyRequests",
    ("POST", "/v1/me/requests"): "fileMyRequest",
    ("GET", "/v1/me/requests/{request_id}"): "getMyRequest",
    ("GET", "/v1/me/requests/{request_id}/export"): "downloadMyExport",
    ("POST", "/v1/verifications"): "sendVerificationCode",
    ("POST", "/v1/verifications/confirm"): "confirmVerificationCode",
    ("GET", "/v1/audit/entries"): "listAuditEntries",
    ("GET", "/v1/audit/entries/{seq}"): "getAuditEntry",
    ("GET", "/v1/audit/entries/{seq}/proof"): "getInclusionProof",
    ("GET", "/v1/audit/export"): "exportAuditJsonl",
    ("GET", "/v1/audit/export.csv"): "exportAuditCsv",
    ("GET", "/v1/audit/checkpoints"): "listCheckpoints",
    ("POST", "/v1/audit/checkpoints"): "signCheckpoint",
    ("GET", "/v1/audit/consistency"): "getConsistencyProof",
    ("GET", "/v1/audit/keys"): "listSigningKeys",
    ("POST", "/v1/audit/keys/rotate"): "rotateSigningKey",
    ("GET", "/v1/requests"): "listRequests",
    ("POST", "/v1/requests"): "fileRequest",
    ("GET", "/v1/requests/{request_id}"): "getRequest",
    ("POST", "/v1/requests/{request_id}/verify"): "verifyRequest",
    ("POST", "/v1/requests/{request_id}/acknowledge"): "acknowledgeRequest",
    ("POST", "/v1/requests/{request_id}/extend"): "extendRequest",
    ("POST", "/v1/requests/{request_id}/reject"): "rejectRequest",
    ("POST", "/v1/requests/{request_id}/fulfil"): "fulfilRequest",
    ("POST", "/v1/requests/{request_id}/download-link"): "createDownloadLink",
    ("GET", "/v1/requests/{request_id}/export"): "downloadRequestExport",
    ("GET", "/v1/requests/{request_id}/certificate"): "getDeletionCertificate",
    ("GET", "/v1/exports/{token}"): "downloadExport",
    ("POST", "/v1/erasures"): "eraseCustomers",
    ("GET", "/v1/plugins"): "listPlugins",
    ("GET", "/v1/plugins/segments"): "segmentsListSegments",
    ("POST", "/v1/plugins/segments"): "segmentsCreateSegment",
    ("POST", "/v1/plugins/segments/preview"): "segmentsPreviewSegment",
    ("GET", "/v1/plugins/segments/{segment_id}"): "segmentsGetSegment",
    ("DELETE", "/v1/plugins/segments/{segment_id}"): "segmentsDeleteSegment",
    ("GET", "/v1/plugins/segments/{segment_id}/count"): "segmentsCountMembers",
    ("GET", "/v1/plugins/segments/{segment_id}/members"): "segmentsListMembers",
    ("GET", "/v1/plugins/templates"): "templatesListTemplates",
    ("POST", "/v1/plugins/templates"): "templatesCreateTemplate",
    ("GET", "/v1/plugins/templates/{template_id}"): "templatesGetTemplate",
    ("PUT", "/v1/plugins/templates/{template_id}"): "templatesUpdateTemplate",
    ("DELETE", "/v1/plugins/templates/{template_id}"): "templatesDeleteTemplate",
    ("POST", "/v1/plugins/templates/{template_id}/preview"): "templatesPreviewTemplate",
}
CAMEL_CASE = re.compile(r"^[a-z][a-z]+(?:[A-Z][a-z0-9]*)+$")


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_committed_document_is_current() -> None:
    stale = "openapi/openapi.json is stale: run `consentry openapi` and commit the result"
    assert COMMITTED.exists(), "openapi/openapi.json is missing: run `consentry openapi`"
    assert COMMITTED.read_text() == openapi_document(), stale


async def test_served_document_is_the_generated_one(client: httpx.AsyncClient) -> None:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(openapi_document())


def test_document_covers_the_api(openapi_spec: dict[str, Any]) -> None:
    ops = operations(openapi_spec)
    assert len(ops) >= 25, [f"{m} {p}" for m, p, _ in ops]
    assert all(op.get("operationId") for _, _, op in ops)


def test_every_v1_operation_documents_problem_errors(openapi_spec: dict[str, Any]) -> None:
    missing = []
    for method, path, op in operations(openapi_spec):
        if not path.startswith("/v1/"):
            continue
        errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
        if not any(PROBLEM in (r.get("content") or {}) for r in errors.values()):
            missing.append(f"{method} {path}")
    assert not missing, f"no application/problem+json error response: {missing}"


def test_error_responses_are_only_problem_json(openapi_spec: dict[str, Any]) -> None:
    """Every error the API answers is problem+json: no other media type is documented for one,
    and each refers to the Problem schema."""
    wrong = []
    for method, path, op in operations(openapi_spec):
        for status, response in op["responses"].items():
            if status[0] not in "45":
                continue
            content = response.get("content") or {}
            schema = content.get(PROBLEM, {}).get("schema", {})
            if set(content) != {PROBLEM} or schema.get("$ref") != "#/components/schemas/Problem":
                wrong.append(f"{method} {path} {status}: {sorted(content)}")
    assert not wrong, wrong
    problem = openapi_spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])


def test_operations_require_bearer_except_public_ones(openapi_spec: dict[str, Any]) -> None:
    scheme = openapi_spec["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    default = openapi_spec.get("security", [])
    unprotected, undeclared_public = [], []
    for method, path, op in operations(openapi_spec):
        effective = op.get("security", default)
        if (method, path) in PUBLIC:
            if effective != []:
                undeclared_public.append(f"{method} {path}: {effective}")
        elif not effective or any("bearer" not in requirement for requirement in effective):
            unprotected.append(f"{method} {path}: {effective}")
    assert not unprotected, f"operations that do not require the bearer scheme: {unprotected}"
    assert not undeclared_public, f"public ones must declare `security: []`: {undeclared_public}"
    documented = {(m, p) for m, p, _ in operations(openapi_spec)}
    assert documented >= PUBLIC, PUBLIC - documented


def test_protected_operations_document_401_and_403(openapi_spec: dict[str, Any]) -> None:
    missing = [
        f"{method} {path}"
        for method, path, op in operations(openapi_spec)
        if (method, path) not in PUBLIC and not {"401", "403"} <= set(op["responses"])
    ]
    assert not missing, missing


async def test_protected_operations_answer_401_without_credential(
    client: httpx.AsyncClient, openapi_spec: dict[str, Any]
) -> None:
    """What the document declares holds: no credential, no access (before any validation)."""
    wrong = []
    for method, path, _ in operations(openapi_spec):
        if (method, path) in PUBLIC:
            continue
        url = path.replace("{external_id}", "c-1").replace("{key_id}", "k-1").replace("{seq}", "1")
        url = re.sub(r"\{[a-z_]+\}", "00000000-0000-4000-8000-000000000001", url)
        body = {} if method in {"POST", "PUT", "PATCH"} else None
        # Required query parameters are validated before the credential (a 422 comes first).
        params = {"purpose": "analytics"} if path.endswith("/check") else None
        r = await client.request(
            method, url, json=body, params=params, headers={"Authorization": ""}
        )
        if r.status_code != 401 or r.headers.get("content-type") != PROBLEM:
            wrong.append(f"{method} {path}: {r.status_code} {r.headers.get('content-type')}")
        elif r.headers.get("www-authenticate") != "Bearer":
            wrong.append(f"{method} {path}: no WWW-Authenticate: Bearer")
    assert not wrong, wrong


def test_document_is_valid_openapi(openapi_spec: dict[str, Any]) -> None:
    """The document passes openapi-spec-validator (OpenAPI 3.1, every schema and default)."""
    validate(openapi_spec)


def test_operation_ids_are_the_stable_contract(openapi_spec: dict[str, Any]) -> None:
    """Every operation has the operationId listed above: none renamed, none new without one."""
    found = {(method, path): op.get("operationId") for method, path, op in operations(openapi_spec)}
    assert found == OPERATION_IDS


def test_operation_ids_are_unique_camel_case_verbs(openapi_spec: dict[str, Any]) -> None:
    """Readable ids such as recordConsents: camelCase, one per operation."""
    ids = [op["operationId"] for _, _, op in operations(openapi_spec)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert not [i for i in ids if not CAMEL_CASE.match(i)]


def test_every_operation_is_described_and_tagged(openapi_spec: dict[str, Any]) -> None:
    """A summary, a description that is not the summary again, and at least one tag."""
    thin = [
        f"{method} {path}"
        for method, path, op in operations(openapi_spec)
        if not op.get("summary")
        or not op.get("tags")
        or op.get("description", op["summary"]) == op["summary"]
    ]
    assert not thin, thin


def json_bodies(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every JSON request body and success body: (where, media type object)."""
    found = []
    for method, path, op in operations(spec):
        bodies = [("request", op.get("requestBody", {}))]
        bodies += [(status, r) for status, r in op["responses"].items() if status[0] == "2"]
        for where, body in bodies:
            media = body.get("content", {}).get("application/json")
            if media is not None:
                found.append((f"{method} {path} {where}", media))
    return found


def test_every_json_body_has_an_example_that_fits_its_schema(
    openapi_spec: dict[str, Any],
) -> None:
    """Examples are shown to readers and used by schemathesis: each must be valid."""
    bodies = json_bodies(openapi_spec)
    assert len(bodies) > 75
    wrong = []
    for where, media in bodies:
        if "example" not in media:
            wrong.append(f"{where}: no example")
            continue
        schema = {**media["schema"], "components": openapi_spec["components"]}
        errors = list(Draft202012Validator(schema).iter_errors(media["example"]))
        wrong += [f"{where}: {e.json_path}: {e.message}" for e in errors[:1]]
    assert not wrong, "\n".join(wrong)


def test_responses_document_their_headers(openapi_spec: dict[str, Any]) -> None:
    """X-Request-ID on every answer, Idempotent-Replayed on the successes of writes that take an
    Idempotency-Key, Retry-After on 429 and 503."""
    header = "#/components/headers/"
    wrong = []
    for method, path, op in operations(openapi_spec):
        idempotent = any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))
        for status, response in op["responses"].items():
            expected = {"X-Request-ID"}
            if idempotent and status[0] == "2":
                expected.add("Idempotent-Replayed")
            if status in ("429", "503"):
                expected.add("Retry-After")
            refs = {h.get("$ref", "").removeprefix(header) for h in response["headers"].values()}
            if refs != expected:
                wrong.append(f"{method} {path} {status}: {sorted(refs)}")
    assert not wrong, wrong
    assert set(openapi_spec["components"]["headers"]) == {
        "X-Request-ID",
        "Idempotent-Replayed",
        "Retry-After",
    }


IDEMPOTENT_WRITES = {  # a sample: writes answered through api.writes.respond
    ("POST", "/v1/customers/{external_id}/consents"),
    ("PUT", "/v1/customers/{external_id}"),
    ("POST", "/v1/api-keys"),
    ("POST", "/v1/events"),
    ("PATCH", "/v1/me/preferences"),
    ("POST", "/v1/plugins/templates"),
}


def test_idempotent_writes_take_an_idempotency_key(openapi_spec: dict[str, Any]) -> None:
    """The request header is documented where the server reads it."""
    taking = {
        (method, path)
        for method, path, op in operations(openapi_spec)
        if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))
    }
    assert taking >= IDEMPOTENT_WRITES
    assert not {(m, p) for m, p in taking if m == "GET"}


def closed_request_bodies(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, example) of each operation whose body schema forbids other properties."""
    schemas = spec["components"]["schemas"]
    found = []
    for method, path, op in operations(spec):
        media = op.get("requestBody", {}).get("content", {}).get("application/json")
        if media is None:
            continue
        ref = media["schema"].get("$ref") or next(
            o["$ref"] for o in media["schema"]["oneOf"] if "$ref" in o
        )
        if schemas[ref.rsplit("/", 1)[-1]].get("additionalProperties") is False:
            found.append((method, path, media["example"]))
    return found


def test_every_request_body_is_documented_closed(openapi_spec: dict[str, Any]) -> None:
    """Every body Struct refuses unknown fields, so every body schema says so."""
    with_body = [op for _, _, op in operations(openapi_spec) if "requestBody" in op]
    assert len(closed_request_bodies(openapi_spec)) == len(with_body) >= 25


async def test_closed_bodies_refuse_an_unknown_field(
    client: httpx.AsyncClient, openapi_spec: dict[str, Any]
) -> None:
    """What `additionalProperties: false` says holds: the example plus one unknown field is a
    422 that names the field."""
    wrong = []
    for method, path, example in closed_request_bodies(openapi_spec):
        url = path.replace("{external_id}", "c-1").replace("{key_id}", "k-1")
        url = re.sub(r"\{[a-z_]+\}", "00000000-0000-4000-8000-000000000001", url)
        r = await client.request(method, url, json={**example, "surplus": 1})
        if r.status_code != 422 or "surplus" not in r.text:
            wrong.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_document_with_every_installed_plugin_stays_valid() -> None:
    """A third party's routes (the chat example plugin) join a valid document, ids unique."""
    spec = document(create_app(Settings(plugins="")))
    validate(spec)
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert "chatSendMessage" in ids
    assert len(ids) == len(set(ids)) > len(OPERATION_IDS)
    assert all(CAMEL_CASE.match(i) for i in ids)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (["v1", "plugins", "chat", "send"], "chatSendChat"),
        (["v1", "plugins", "my-crm", "send"], "myCrmSendChat"),
        (["v1", "other"], "sendChat"),
    ],
)
def test_operations_without_an_id_get_a_readable_one(path: list[str], expected: str) -> None:
    """Litestar's default would be V1PluginsChatSendSendChat; ours names the plugin, then the
    handler."""

    @post("/send")
    async def send_chat() -> None:
        return None

    assert readable_operation_id(send_chat, "POST", list(path)) == expected


async def test_a_zero_bound_is_documented_and_holds(
    client: httpx.AsyncClient, openapi_spec: dict[str, Any]
) -> None:
    """Litestar drops `ge=0`; the document says minimum 0, and the server refuses -1."""
    prop = openapi_spec["components"]["schemas"]["PreferencesPatch"]["properties"]
    assert prop["frequency_cap_per_week"]["minimum"] == 0
    r = await client.put("/v1/customers/c-1", json={"region": "EU"})
    assert r.status_code == 201, r.text
    r = await client.patch("/v1/customers/c-1/preferences", json={"frequency_cap_per_week": -1})
    assert r.status_code == 422, r.text
