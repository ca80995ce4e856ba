"""Every installed plugin (entry-point group `consentry`: first-party or not) passes the same
checks: it loads, implements only hooks of the spec with the right async-ness, its capabilities
and channels agree with the policy, and its DSR hooks export JSON and erase for good."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest

from consentry.host.manager import Plugins, discover
from consentry.plugins import hookspecs
from consentry.policy.loader import load_policy
from consentry.settings import Settings
from consentry.testing import Service, running_service

INSTALLED = [name for name, _ in discover()]
SYNC_HOOKS = {
    "register_capabilities",
    "register_routes",
    "register_tables",
    "register_commands",
    "register_channels",
    "register_template_filters",
    "assign_conversation",
}
SPEC_HOOKS = {n for n, v in vars(hookspecs).items() if hasattr(v, "consentry_spec")}
SUBJECT_COLUMN = "subject_id"

# Plugins whose capabilities the shipped policy does not gate yet, and why. Strict: the test
# fails once the policy catches up, so the entry is removed then.
POLICY_GAPS: dict[str, str] = {}


def _one(name: str) -> Plugins:
    return Plugins.load([name])


def _impls(plugins: Plugins, name: str) -> dict[str, Any]:
    return {
        hook: impl.function
        for hook, caller in vars(plugins.manager.hook).items()
        for impl in getattr(caller, "get_hookimpls", list)()
        if impl.plugin_name == name
    }


def _tables(plugins: Plugins, name: str) -> list[type[Any]]:
    return [table for owner, table in plugins.registry.tables if owner == name]


def _subject_tables(plugins: Plugins, name: str) -> list[str]:
    """The plugin's tables that hold rows per customer (they have a `subject_id` column)."""
    return [
        t._meta.tablename
        for t in _tables(plugins, name)
        if any(c._meta.db_column_name == SUBJECT_COLUMN for c in t._meta.columns)
    ]


@pytest.mark.parametrize("name", INSTALLED)
def test_the_plugin_loads_and_implements_only_hooks_of_the_spec(name: str) -> None:
    """Loading runs pluggy's check_pending (an unknown hook name fails); every implemented
    hook is in hookspecs, and registration and routing hooks are not coroutines."""
    plugins = _one(name)
    assert plugins.names() == [name]
    impls = _impls(plugins, name)
    unknown = sorted(set(impls) - SPEC_HOOKS)
    assert not unknown, f"plugin {name} implements hooks not in the spec: {unknown}"
    wrongly_async = sorted(
        h for h in impls if h in SYNC_HOOKS and inspect.iscoroutinefunction(impls[h])
    )
    assert not wrongly_async, f"plugin {name}: these hooks must be plain functions: {wrongly_async}"


@pytest.mark.parametrize("name", INSTALLED)
def test_the_plugin_names_its_tables_after_itself(name: str) -> None:
    plugins = _one(name)
    wrong = [
        t._meta.tablename
        for t in _tables(plugins, name)
        if not t._meta.tablename.startswith(f"{name}_")
    ]
    assert not wrong, f"plugin {name}: tables must be named {name}_<thing>, not {wrong}"


@pytest.mark.parametrize("name", INSTALLED)
def test_the_plugin_keeping_tables_implements_the_dsr_hooks(name: str) -> None:
    """Whoever keeps tables can be asked for a customer's data and to erase it."""
    plugins = _one(name)
    if not _tables(plugins, name):
        return
    impls = _impls(plugins, name)
    for hook in ("dsr_export", "dsr_erase"):
        if hook not in impls:
            pytest.fail(f"plugin {name} registers tables but does not implement {hook}")


def _policy_problems(name: str) -> list[str]:
    policy = load_policy(Settings().policy_path)
    plugins = _one(name)
    problems = []
    for capability, (owner, declared) in sorted(plugins.registry.capabilities.items()):
        if owner != name:
            continue
        unknown = [p for p in declared.purposes if p not in policy.purposes]
        if unknown:
            problems.append(f"capability {capability} needs purposes the policy lacks: {unknown}")
        gated = policy.gates.get(capability)
        if gated is None:
            problems.append(
                f"capability {capability} has no gate in the policy; add"
                f" `{capability}: [{', '.join(declared.purposes)}]` under gates"
            )
        elif sorted(gated) != sorted(declared.purposes):
            problems.append(
                f"capability {capability}: plugin needs {sorted(declared.purposes)},"
                f" policy gates it on {sorted(gated)}"
            )
    for channel, (owner, _) in sorted(plugins.registry.channels.items()):
        if owner == name and channel not in policy.channels:
            problems.append(f"channel {channel} is not one of the policy's channels")
    return problems


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=POLICY_GAPS[n]))
        if n in POLICY_GAPS
        else n
        for n in INSTALLED
    ],
)
def test_capabilities_and_channels_agree_with_the_policy(name: str) -> None:
    """Each declared capability's purposes exist and equal the policy's gate for it; each
    registered channel is a policy channel."""
    problems = _policy_problems(name)
    assert not problems, f"plugin {name} disagrees with {Settings().policy_path}:\n" + "\n".join(
        problems
    )


# -- DSR, on both engines ----------------------------------------------------------------------


@pytest.fixture(params=INSTALLED)
async def service(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> AsyncIterator[Service]:
    async with running_service(
        database_url=database_url, tmp_path=tmp_path, loaded=_one(request.param)
    ) as running:
        yield running


def _plugin(service: Service) -> str:
    [name] = service.plugins.names()
    return name


async def _customer(service: Service, external_id: str) -> UUID:
    """A customer who agreed to every consent purpose, so a gate has nothing to refuse."""
    policy = service.core.policy
    consents = {p: "granted" for p, spec in policy.purposes.items() if spec.legal_basis.objectable}
    return await service.customer(
        external_id,
        identities={"email": f"{external_id}@example.com"},
        attributes={"plan": "pro"},
        consents=consents,
    )


async def _seed(service: Service, subject_id: UUID) -> int:
    """One row, of column defaults, for this customer in each of the plugin's subject tables."""
    name = _plugin(service)
    context = service.context(name)
    seeded = 0
    for table in _tables(service.plugins, name):
        columns = table._meta.columns
        if not any(c._meta.db_column_name == SUBJECT_COLUMN for c in columns):
            continue
        row = table()
        values = {c._meta.db_column_name: getattr(row, c._meta.name) for c in columns}
        values[SUBJECT_COLUMN] = subject_id
        sql = (
            f"INSERT INTO {table._meta.tablename} ({', '.join(values)})"
            f" VALUES ({', '.join('?' for _ in values)})"
        )
        await context.execute(sql, *values.values())
        seeded += 1
    return seeded


async def _rows(service: Service, subject_id: UUID) -> dict[str, int]:
    name = _plugin(service)
    return {
        table: len(
            await service.core.db.fetch(
                f"SELECT 1 FROM {table} WHERE {SUBJECT_COLUMN} = ?", subject_id
            )
        )
        for table in _subject_tables(service.plugins, name)
    }


def _is_dict(result: Any) -> str | None:
    return None if isinstance(result, dict) else f"returned {type(result).__name__}, not a dict"


def _is_count(result: Any) -> str | None:
    ok = isinstance(result, int) and not isinstance(result, bool) and result >= 0
    return None if ok else f"returned {result!r}, not a count of rows"


async def _export(service: Service, subject_id: UUID) -> Any:
    results = await service.plugins.gather(
        "dsr_export", service.context, _is_dict, subject_id=subject_id
    )
    return results.get(_plugin(service))


async def _erase(service: Service, subject_id: UUID) -> Any:
    results = await service.plugins.gather(
        "dsr_erase", service.context, _is_count, subject_id=subject_id
    )
    return results.get(_plugin(service))


async def test_dsr_export_is_json_for_a_customer_with_data(service: Service) -> None:
    """The export is a dict that survives a JSON round trip unchanged (json and msgspec), and
    is not empty when the plugin holds rows for the customer."""
    name = _plugin(service)
    if "dsr_export" not in _impls(service.plugins, name):
        pytest.skip(f"plugin {name} keeps no tables and implements no dsr_export")
    subject_id = await _customer(service, "contract-1")
    seeded = await _seed(service, subject_id)
    exported = await _export(service, subject_id)
    assert json.loads(json.dumps(exported)) == exported, f"plugin {name}: export is not plain JSON"
    assert msgspec.json.decode(msgspec.json.encode(exported)) == exported
    if seeded:
        assert exported, f"plugin {name} holds rows for the customer but exports nothing"


async def test_dsr_erase_leaves_no_rows_and_is_idempotent(service: Service) -> None:
    """Erasure removes every row of the customer in the plugin's tables, counts them, keeps
    other customers' rows, and removes nothing the second time."""
    name = _plugin(service)
    if "dsr_erase" not in _impls(service.plugins, name):
        pytest.skip(f"plugin {name} keeps no tables and implements no dsr_erase")
    subject_id = await _customer(service, "contract-2")
    bystander = await _customer(service, "contract-3")
    await _seed(service, subject_id)
    await _seed(service, bystander)
    held = sum((await _rows(service, subject_id)).values())
    others = await _rows(service, bystander)
    assert await _erase(service, subject_id) == held, f"plugin {name}: wrong count erased"
    left = {t: n for t, n in (await _rows(service, subject_id)).items() if n}
    assert not left, f"plugin {name} left rows of the erased customer in {left}"
    assert await _rows(service, bystander) == others, f"plugin {name} erased another customer"
    assert await _erase(service, subject_id) == 0, f"plugin {name}: a second erase removed rows"
