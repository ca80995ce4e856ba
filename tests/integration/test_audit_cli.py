"""`consentry audit ...` and `consentry receipt verify` as an operator runs them: real
processes, real database, exit codes and messages."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from consentry.core.runtime import Core
from consentry.settings import Settings
from consentry.storage.writer import WriteTx
from consentry.testing import run_cli

consentry = run_cli


async def fill(core: Core, n: int) -> None:
    async def job(tx: WriteTx) -> None:
        for i in range(n):
            tx.audit("key:cli", "test.appended", f"subject:s{i % 4}", i=i)

    await core.writer.submit(job)


async def test_verify_the_database(core: Core, settings: Settings) -> None:
    await fill(core, 300)
    await core.checkpointer.checkpoint()
    code, out, err = await consentry(settings, "audit", "verify")
    assert code == 0, out + err
    assert out.startswith("verified: 300 entries") and "entries/s" in err
    await core.checkpointer.stop()
    await fill(core, 5)
    code, out, _ = await consentry(settings, "audit", "verify")
    assert code == 3 and out.startswith("unverifiable") and "301..305" in out
    async with core.db.transaction() as tx:
        await tx.execute("UPDATE audit_log SET actor = 'key:someone-else' WHERE seq = 123")
    code, out, _ = await consentry(settings, "audit", "verify")
    assert code == 1 and "first break at seq 123" in out, out


async def test_export_verifies_offline_and_tampering_is_named(
    core: Core, settings: Settings, tmp_path: Path
) -> None:
    await fill(core, 80)
    keys, export = tmp_path / "keys.json", tmp_path / "s1.jsonl"
    assert (await consentry(settings, "audit", "keys", "--output", str(keys)))[0] == 0
    code, _, err = await consentry(
        settings, "audit", "export", "--output", str(export), "--actor", "key:cli"
    )
    assert code == 0 and "80 entries" in err, err
    code, out, _ = await consentry(
        settings, "audit", "verify", str(export), "--public-key", str(keys)
    )
    assert code == 0 and out.startswith("verified: 80 entries"), out
    lines = export.read_text().splitlines()
    entry = json.loads(lines[41])
    entry["details"]["i"] = 999
    lines[41] = json.dumps(entry)
    export.write_text("\n".join(lines) + "\n")
    code, out, _ = await consentry(
        settings, "audit", "verify", str(export), "--public-key", str(keys)
    )
    assert code == 1 and f"first break at seq {entry['seq']}" in out, out
    code, _, err = await consentry(settings, "audit", "verify", str(export))
    assert code == 2 and "--public-key" in err


async def test_rotate_key_from_the_cli(core: Core, settings: Settings) -> None:
    await fill(core, 10)
    old = core.signing_key.key_id
    await core.checkpointer.checkpoint()
    code, out, _ = await consentry(settings, "audit", "rotate-key")
    assert code == 0 and "new signing key" in out
    new_id = out.split()[3].rstrip(";")
    assert new_id != old
    code, out, _ = await consentry(settings, "audit", "keys")
    assert {k["kid"] for k in json.loads(out)["keys"]} == {old, new_id}


async def test_receipt_verify_from_the_cli(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    r = await client.put("/v1/customers/r-1", json={"region": "EU"})
    assert r.status_code == 201
    r = await client.post(
        "/v1/customers/r-1/consents",
        json={"decisions": [{"purpose": "analytics", "decision": "granted"}]},
    )
    record_id = r.json()["records"][0]["id"]
    r = await client.get(f"/v1/customers/r-1/consents/{record_id}/receipt")
    receipt, keys = tmp_path / "receipt.jws", tmp_path / "keys.json"
    receipt.write_text(r.json()["jws"])
    keys.write_text((await client.get("/.well-known/jwks.json")).text)
    code, out, _ = await consentry(
        settings, "receipt", "verify", str(receipt), "--public-key", str(keys)
    )
    assert code == 0 and r.json()["receipt_id"] in out, out
    head, payload, signature = receipt.read_text().split(".")
    receipt.write_text(f"{head}.{payload}.{signature[:-4]}AAAA")
    code, out, err = await consentry(
        settings, "receipt", "verify", str(receipt), "--public-key", str(keys)
    )
    assert code == 1 and "signature" in (out + err)
