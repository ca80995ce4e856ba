"""`consentry erase` and `consentry requests ...` as an operator runs them: real processes, real
database, exit codes, progress and summaries."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import httpx

from consentry.core.principals import SYSTEM
from consentry.core.runtime import Core
from consentry.dsr.bundle import read_bundle
from consentry.dsr.cli import request_json
from consentry.dsr.requests import get
from consentry.settings import Settings
from consentry.testing import run_cli as consentry


async def test_bulk_erase_from_a_file_then_retry(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    for i in range(3):
        r = await client.put(f"/v1/customers/cli-{i}", json={"identities": {"email": f"{i}@x.io"}})
        assert r.status_code == 201
    ids = tmp_path / "ids.txt"
    ids.write_text("cli-0\ncli-1\n\ncli-missing\ncli-2\ncli-1\n")  # blank and repeated lines
    failed = tmp_path / "failed.txt"
    code, _, err = await consentry(
        settings, "erase", "--file", str(ids), "--failed-out", str(failed)
    )
    assert code == 1, err
    assert "4/4" in err and "erased 3, already 0, not found 1, failed 0" in err
    assert "not_found: cli-missing" in err
    assert failed.read_text() == "cli-missing\n"
    r = await client.get("/v1/customers/cli-1")
    assert r.status_code == 410

    code, _, err = await consentry(settings, "erase", "cli-0", "cli-1", "cli-2")
    assert code == 0, err
    assert "erased 0, already 3" in err

    code, out, err = await consentry(settings, "requests", "list", "--all")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and all("erasure" in x and "(erased)" in x for x in lines)
    request_id = lines[0].split()[0]
    code, out, _ = await consentry(settings, "requests", "show", request_id)
    shown = json.loads(out)
    assert shown["state"] == "completed" and shown["channel"] == "bulk"
    assert shown["result"]["erasure"]["erased"]["identities"] == ["email"]


async def test_fulfil_and_export_an_access_request(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    r = await client.put(
        "/v1/customers/cli-x", json={"region": "EU", "identities": {"email": "x@x.io"}}
    )
    assert r.status_code == 201
    code, out, err = await consentry(settings, "requests", "file", "cli-x", "--type", "access")
    assert code == 0 and "received, due" in err, err
    request_id = out.strip()
    code, out, _ = await consentry(settings, "requests", "list")
    assert code == 0 and request_id in out and "d left" in out
    code, _, err = await consentry(settings, "requests", "fulfil", request_id)
    assert code == 1 and "verify the customer's identity first" in err
    code, _, err = await consentry(settings, "requests", "verify", request_id, "--method", "id")
    assert code == 0 and "verified" in err, err
    code, _, err = await consentry(settings, "requests", "extend", request_id, "--reason", "x")
    assert code == 0, err
    code, _, err = await consentry(settings, "requests", "extend", request_id, "--reason", "x")
    assert code == 1 and "one extension" in err
    code, _, err = await consentry(settings, "requests", "fulfil", request_id)
    assert code == 0, err
    bundle = tmp_path / "export.zip"
    code, _, err = await consentry(
        settings, "requests", "export", request_id, "--output", str(bundle)
    )
    assert code == 0 and "sha256" in err, err
    files = read_bundle(bundle.read_bytes())["files"]
    assert files["customer.json"]["identities"] == {"email": "x@x.io"}
    code, _, err = await consentry(settings, "requests", "show", "not-a-uuid")
    assert code == 1 and "request ids are UUIDs" in err


async def test_the_cli_shows_a_request_as_the_api_does(
    client: httpx.AsyncClient, core: Core
) -> None:
    """`requests show` and `list --json` print what GET /v1/requests/{id} answers (the CLI
    converts in the dsr area, without the HTTP layer): same keys, same values."""
    r = await client.put("/v1/customers/cli-j", json={"region": "EU"})
    assert r.status_code == 201
    r = await client.post(
        "/v1/requests",
        json={"external_id": "cli-j", "type": "access", "verified_by": "signed-in account"},
    )
    assert r.status_code == 201, r.text
    request = await get(core, UUID(r.json()["id"]), SYSTEM)
    now = core.clock()
    answer = await client.get(f"/v1/requests/{request.id}")
    assert json.loads(request_json(request, now)) == answer.json()
