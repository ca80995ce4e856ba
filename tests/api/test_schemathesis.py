"""Schemathesis over every operation of the app's OpenAPI document, on both engines.

The app runs in a real uvicorn server inside the test's event loop (the core's single writer task
lives there); schemathesis is synchronous, so it runs in a worker thread and calls the server
over HTTP. Each operation gets hand-written valid requests (which must succeed) and then
generated ones, positive and negative, with the path parameters often pointed at seeded data.
Every response is checked with CHECKS.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

Seed = Any  # tests/api/conftest.py: Seed (conftest modules are not importable)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = {
    GenerationMode.POSITIVE: int(os.environ.get("CONSENTRY_FUZZ_EXAMPLES", "40")),
    GenerationMode.NEGATIVE: int(os.environ.get("CONSENTRY_FUZZ_NEGATIVE_EXAMPLES", "20")),
}
MIN_OPERATIONS = 75  # every operation in the document


# Operations that take no parameter and no body, so nothing can be generated for them: each is
# listed here on purpose (a new operation that forgot its parameters would show up).
INPUTLESS = {
    "GET /health",
    "GET /v1/me/consents",
    "GET /v1/me/preferences",
    "GET /v1/audit/keys",
    "GET /v1/plugins",
    "POST /v1/audit/checkpoints",
    "POST /v1/audit/keys/rotate",
    "GET /.well-known/jwks.json",
    "GET /.well-known/consentry-audit-keys.pem",
}


def explicit_examples(seed: Seed) -> dict[str, list[dict[str, Any]]]:
    """Valid requests per operation: each must answer 2xx (and pass the checks)."""
    c1 = {"external_id": seed.external_id}
    return {
        "GET /health": [{}],
        "GET /v1/purposes": [{}, {"query": {"language": "ja"}}],
        "GET /v1/purposes/{name}": [{"path_parameters": {"name": "marketing_email"}}],
        "POST /v1/confirmations": [{"body": {"token": seed.confirmation_token}}],
        "GET /v1/api-keys": [{"query": {"limit": 1}}],
        "POST /v1/api-keys": [{"body": {"name": "ci", "scopes": ["backend:read", "admin"]}}],
        "DELETE /v1/api-keys/{key_id}": [{"path_parameters": {"key_id": seed.spare_key_id}}],
        "GET /v1/customers": [{"query": {"limit": 1}}, {}],
        "POST /v1/customers/search": [{"body": {"email": "c1@example.com", "reason": "support"}}],
        "GET /v1/customers/{external_id}": [{"path_parameters": c1, "query": {"reason": "ci"}}],
        "PUT /v1/customers/{external_id}": [
            {
                "path_parameters": {"external_id": "c-2"},
                "body": {"region": "US-CA", "identities": {"phone": "+14155550100"}},
            },
            {
                "path_parameters": c1,
                "body": {"attributes": {"plan": None, "monthly_spend": 12.5, "vip": True}},
            },
        ],
        "GET /v1/customers/{external_id}/check": [
            {"path_parameters": c1, "query": {"purpose": "analytics"}},
            {
                "path_parameters": c1,
                "query": {"purpose": "marketing_email", "channel": "email", "topic": "newsletter"},
            },
            {"path_parameters": c1, "query": {"purpose": "no-such-purpose"}},
        ],
        "GET /v1/customers/{external_id}/consents": [{"path_parameters": c1}],
        "POST /v1/customers/{external_id}/consents": [
            {
                "path_parameters": c1,
                "body": {
                    "decisions": [
                        {"purpose": "personalization", "decision": "granted"},
                        {"purpose": "analytics", "decision": "withdrawn"},
                    ],
                    "source": "preference_center",
                    "evidence": {"ip": "203.0.113.9", "user_agent": "ci", "url": "https://x.test"},
                },
            },
            {"path_parameters": {"external_id": "c-2"}, "headers": {"Sec-GPC": "1"}, "body": {}},
        ],
        "GET /v1/customers/{external_id}/consents/history": [
            {"path_parameters": c1, "query": {"limit": 1}},
            {"path_parameters": c1, "query": {"purpose": "analytics"}},
        ],
        "GET /v1/customers/{external_id}/events": [
            {"path_parameters": c1},
            {
                "path_parameters": c1,
                "query": {"name": "signed_up", "limit": 1, "since": "2000-01-01T00:00:00Z"},
            },
        ],
        "POST /v1/customers/{external_id}/events": [
            {
                "path_parameters": c1,
                "body": {
                    "name": "viewed",
                    "properties": {"page": "/x"},
                    "occurred_at": "2024-05-01T12:00:00Z",
                },
            },
        ],
        "POST /v1/events": [
            {
                "body": {
                    "events": [
                        {"external_id": seed.external_id, "name": "a"},
                        {"external_id": "c-2", "name": "b", "properties": {"n": 1}},
                    ]
                }
            },
        ],
        "GET /v1/customers/{external_id}/preferences": [{"path_parameters": c1}],
        "PATCH /v1/customers/{external_id}/preferences": [
            {
                "path_parameters": c1,
                "body": {
                    "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"},
                    "frequency_cap_per_week": 3,
                    "channels": {"sms": True},
                },
            },
            {"path_parameters": c1, "body": {"quiet_hours": None, "language": None}},
        ],
        "POST /v1/customers/{external_id}/token": [
            {"path_parameters": c1, "body": {"ttl_seconds": 600}},
            {"path_parameters": c1},
        ],
        "GET /v1/me/consents": [{}],
        "POST /v1/me/consents": [
            {"body": {"decisions": [{"purpose": "product_updates", "decision": "granted"}]}},
        ],
        "GET /v1/me/consents/history": [{"query": {"limit": 2}}],
        "GET /v1/me/preferences": [{}],
        "PATCH /v1/me/preferences": [{"body": {"topics": {"tips": False}, "language": "ja"}}],
        "GET /v1/audit/entries": [
            {"query": {"customer": seed.external_id, "action": "consent.*", "order": "asc"}},
            {"query": {"purpose": "analytics", "limit": 2}},
        ],
        "GET /v1/audit/entries/{seq}": [{"path_parameters": {"seq": 1}}],
        "GET /v1/audit/entries/{seq}/proof": [
            {"path_parameters": {"seq": 1}, "query": {"tree_size": seed.checkpoint_size}}
        ],
        "GET /v1/audit/export": [
            {"query": {"customer": seed.external_id}},
            {"query": {"action": "consent.recorded", "since": "2020-01-01T00:00:00Z"}},
        ],
        "GET /v1/audit/export.csv": [{"query": {"action": "consent.recorded"}}],
        "GET /v1/audit/checkpoints": [{"query": {"limit": 1}}],
        "POST /v1/audit/checkpoints": [{}],
        "GET /v1/audit/consistency": [
            {"query": {"from": seed.checkpoint_size, "to": seed.checkpoint_size}}
        ],
        "GET /v1/audit/keys": [{}],
        "GET /v1/plugins": [{}],
        "POST /v1/plugins/segments": [
            {
                "body": {
                    "name": "vip",
                    "purpose": "marketing_email",
                    "filter": {
                        "and": [
                            {"attr": "plan", "op": "in", "value": ["pro", "team"]},
                            {"not": {"attr": "company", "op": "exists"}},
                        ]
                    },
                }
            }
        ],
        "GET /v1/plugins/segments": [{"query": {"limit": 1}}],
        "GET /v1/plugins/segments/{segment_id}": [
            {"path_parameters": {"segment_id": seed.segment_id}}
        ],
        "DELETE /v1/plugins/segments/{segment_id}": [
            {"path_parameters": {"segment_id": seed.spare_segment_id}}
        ],
        "POST /v1/plugins/segments/preview": [
            {
                "body": {
                    "purpose": "marketing_email",
                    "filter": {"attr": "signup_at", "op": "within_days", "value": 30},
                }
            }
        ],
        "GET /v1/plugins/segments/{segment_id}/count": [
            {"path_parameters": {"segment_id": seed.segment_id}}
        ],
        "GET /v1/plugins/segments/{segment_id}/members": [
            {"path_parameters": {"segment_id": seed.segment_id}, "query": {"limit": 10}}
        ],
        "POST /v1/plugins/templates": [
            {"body": {"name": "note", "kind": "text", "body": "{{ company.name }}: hello"}}
        ],
        "GET /v1/plugins/templates": [{"query": {"limit": 1}}],
        "GET /v1/plugins/templates/{template_id}": [
            {"path_parameters": {"template_id": seed.template_id}}
        ],
        "PUT /v1/plugins/templates/{template_id}": [
            {
                "path_parameters": {"template_id": seed.template_id},
                "body": {"name": "welcome-main", "body": "Hello {{ customer.plan }}"},
            }
        ],
        "DELETE /v1/plugins/templates/{template_id}": [
            {"path_parameters": {"template_id": seed.spare_template_id}}
        ],
        "POST /v1/plugins/templates/{template_id}/preview": [
            {
                "path_parameters": {"template_id": seed.template_id},
                "body": {"external_id": seed.external_id},
            }
        ],
        "POST /v1/audit/keys/rotate": [{}],
        "GET /v1/customers/{external_id}/consent-proof": [{"path_parameters": c1}],
        "GET /v1/customers/{external_id}/consent-proof.html": [{"path_parameters": c1}],
        "GET /v1/customers/{external_id}/consents/{record_id}/receipt": [
            {"path_parameters": {**c1, "record_id": seed.record_id}}
        ],
        "GET /v1/me/consents/{record_id}/receipt": [
            {"path_parameters": {"record_id": seed.record_id}}
        ],
        **request_examples(seed),
        "GET /.well-known/jwks.json": [{}],
        "GET /.well-known/consentry-audit-keys.pem": [{}],
    }


def request_examples(seed: Seed) -> dict[str, list[dict[str, Any]]]:
    req = seed.requests

    def at(purpose: str) -> dict[str, Any]:
        return {"path_parameters": {"request_id": req[purpose]}}

    return {
        "POST /v1/requests": [{"body": {"external_id": seed.external_id, "type": "access"}}],
        "GET /v1/requests": [
            {"query": {"open": "true", "limit": 5}},
            {"query": {"overdue": "true"}},
        ],
        "GET /v1/requests/{request_id}": [at("access")],
        "POST /v1/requests/{request_id}/verify": [{**at("verify"), "body": {"method": "login"}}],
        "POST /v1/requests/{request_id}/acknowledge": [at("acknowledge")],
        "POST /v1/requests/{request_id}/extend": [{**at("extend"), "body": {"reason": "volume"}}],
        "POST /v1/requests/{request_id}/reject": [{**at("reject"), "body": {"reason": "dup"}}],
        "POST /v1/requests/{request_id}/fulfil": [{**at("fulfil"), "body": {"note": "fixed"}}],
        "POST /v1/requests/{request_id}/download-link": [at("access")],
        "GET /v1/requests/{request_id}/export": [at("access")],
        "GET /v1/requests/{request_id}/certificate": [at("erasure")],
        "GET /v1/exports/{token}": [{"path_parameters": {"token": seed.export_token}}],
        "POST /v1/erasures": [{"body": {"external_ids": ["c-bulk", "nobody-here"]}}],
        "POST /v1/me/requests": [{"body": {"type": "portability"}}],
        "GET /v1/me/requests": [{}],
        "GET /v1/me/requests/{request_id}": [at("access")],
        "GET /v1/me/requests/{request_id}/export": [at("access")],
        "POST /v1/verifications": [{"body": {"email": "nobody@example.com"}}],
        "POST /v1/verifications/confirm": [
            {"body": {"email": "c1@example.com", "code": seed.verification_code}}
        ],
    }


@dataclass
class Run:
    base_url: str
    seed: Seed
    session: requests.Session = field(default_factory=requests.Session)
    calls: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[str] = field(default_factory=list)
    generated_ok: Counter[str] = field(default_factory=Counter)
    http_seconds: float = 0.0
    inputless: set[str] = field(default_factory=set)

    def credential(self, path: str) -> str:
        # /v1/me is for customers: an admin key would only ever get 403 there.
        token = self.seed.customer_token if path.startswith("/v1/me/") else self.seed.admin_key
        return f"Bearer {token}"

    def call_and_check(self, case: schemathesis.Case, *, generated: bool) -> int:
        headers = {"Authorization": self.credential(case.operation.path)}
        response = case.call(
            base_url=self.base_url, session=self.session, headers=headers, timeout=30
        )
        label = case.operation.label
        self.http_seconds += response.elapsed
        self.calls[label] += 1
        self.statuses[label][response.status_code] += 1
        if generated and 200 <= response.status_code < 300:
            self.generated_ok[label] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)
        return response.status_code

    def seed_path(self, case: schemathesis.Case) -> None:
        """Point the path at seeded data: generated ids almost never exist."""
        known = {
            "external_id": self.seed.external_id,
            "name": "analytics",
            "key_id": self.seed.spare_key_id,
            "seq": 1,
            "record_id": self.seed.record_id,
            "segment_id": self.seed.segment_id,
            "template_id": self.seed.template_id,
            "request_id": self.seed.requests["access"],
            "token": self.seed.export_token,
        }
        step = case.operation.path.rsplit("/", 1)[-1]
        if f"fuzz-{step}" in self.seed.requests:  # an open request each step can succeed on
            known["request_id"] = self.seed.requests[f"fuzz-{step}"]
        elif step == "certificate":
            known["request_id"] = self.seed.requests["erasure"]
        for name in list(case.path_parameters or {}):
            if name in known:
                case.path_parameters[name] = known[name]

    def explicit(self, operation: Any, examples: list[dict[str, Any]]) -> None:
        for example in examples:
            case = operation.Case(**example)
            try:
                status = self.call_and_check(case, generated=False)
            except (Exception, FailureGroup) as exc:  # a failed check: report it with the rest
                self.failures.append(f"{operation.label} (explicit {example}):\n{exc}")
                continue
            if not 200 <= status < 300:
                self.failures.append(f"{operation.label} (explicit {example}): answered {status}")

    def generated(self, operation: Any, mode: GenerationMode) -> None:
        @settings(
            max_examples=MAX_EXAMPLES[mode],
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode), use_seed=st.booleans())
        def fuzz(case: schemathesis.Case, use_seed: bool) -> None:
            if use_seed:
                self.seed_path(case)
            self.call_and_check(case, generated=True)

        try:
            fuzz()
        except Unsatisfiable as exc:
            # Nothing to make invalid (no parameters, no body): only positive cases exist.
            if mode is not GenerationMode.NEGATIVE:
                self.failures.append(f"{operation.label} ({mode.value}): {exc}")
        except (Exception, FailureGroup) as exc:
            self.failures.append(f"{operation.label} ({mode.value}):\n{exc}")


def run_schemathesis(base_url: str, seed: Seed) -> Run:
    """Blocking: load the served document and test every operation in it."""
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json", timeout=30)
    run = Run(base_url, seed)
    examples = explicit_examples(seed)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Operations with hand-written examples first, so the seeded confirmation token and spare
    # key are still valid when their examples run.
    for operation in operations:
        run.explicit(operation, examples.get(operation.label, []))
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run.generated(operation, mode)
    run.session.close()
    for operation in operations:
        raw = schema.raw_schema["paths"][operation.path][operation.method.lower()]
        if not raw.get("parameters") and not raw.get("requestBody"):
            run.inputless.add(operation.label)
    unknown = set(examples) - {op.label for op in operations}
    if unknown:
        run.failures.append(f"examples for operations not in the document: {sorted(unknown)}")
    missing = {op.label for op in operations} - set(examples)
    if missing:
        run.failures.append(f"operations without a hand-written valid example: {sorted(missing)}")
    return run


async def test_schemathesis_every_operation(live_server: str, seeded: Seed) -> None:
    started = time.monotonic()
    run = await asyncio.to_thread(run_schemathesis, live_server, seeded)
    elapsed = time.monotonic() - started
    total = sum(run.calls.values())
    print(
        f"schemathesis: {len(run.calls)} operations, {total} calls in {elapsed:.1f}s"
        f" ({run.http_seconds:.1f}s waiting for the server)"
    )
    for label in sorted(run.calls):
        statuses = dict(sorted(run.statuses[label].items()))
        print(f"  {label}: {run.calls[label]} calls, statuses {statuses}")
    assert not run.failures, "\n\n".join(run.failures)
    # Not vacuous: every documented operation was called, many times, and generated requests
    # got past authentication and validation to a 2xx on most operations.
    assert len(run.calls) >= MIN_OPERATIONS, sorted(run.calls)
    assert total >= MIN_OPERATIONS * 20, total
    few = {label: n for label, n in run.calls.items() if n < 10 and label not in run.inputless}
    assert not few, f"operations called fewer than 10 times: {few}"
    assert run.inputless == INPUTLESS, sorted(run.inputless ^ INPUTLESS)
    never_ok = sorted(set(run.calls) - set(run.generated_ok))
    assert len(never_ok) <= MIN_OPERATIONS // 2, f"generated requests never got a 2xx: {never_ok}"


NUL_REQUESTS = [
    ("GET", "/v1/customers/c-1/check", {"params": {"purpose": "a\x00"}}),
    ("GET", "/v1/customers/c-1/consents/history", {"params": {"purpose": "\x00"}}),
    ("GET", "/v1/customers/c-1/events", {"params": {"name": "\x00"}}),
    ("DELETE", "/v1/api-keys/%00", {}),
    ("POST", "/v1/api-keys", {"json": {"name": "a\x00", "scopes": ["admin"]}}),
    ("PUT", "/v1/customers/c-1", {"json": {"attributes": {"plan": "x\x00"}}}),
    ("POST", "/v1/customers/c-1/events", {"json": {"name": "n\x00", "properties": {"a": "\x00"}}}),
]


async def test_nul_characters_are_not_server_errors(client: httpx.AsyncClient) -> None:
    """Found by the run above on PostgreSQL (it refuses NUL in text): a 4xx, never a 500."""
    r = await client.put("/v1/customers/c-1", json={"region": "EU"})
    assert r.status_code == 201, r.text
    wrong = []
    for method, url, kwargs in NUL_REQUESTS:
        r = await client.request(method, url, **kwargs)
        if r.status_code >= 500 or (
            r.status_code >= 400 and r.headers["content-type"] != "application/problem+json"
        ):
            wrong.append(f"{method} {url}: {r.status_code} {r.text}")
    assert not wrong, wrong
