"""The plugin's hook implementations (the contract is `consentry.plugins.hookspecs`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from consentry.plugins import Capability, PluginContext, hookimpl
from consentry_segments import store
from consentry_segments.filters import CAPABILITY
from consentry_segments.routes import SegmentController

# Must equal the policy's gate for the capability (policies/default.yaml).
PURPOSES = ("marketing_email",)


@hookimpl
def register_capabilities(register: Callable[[Capability], None]) -> None:
    register(
        Capability(
            CAPABILITY,
            PURPOSES,
            "Customers whose attributes and events match a filter, among those whose consent"
            " covers the segment's purpose",
        )
    )


@hookimpl
def register_tables(register: Callable[[type[Any]], None]) -> None:
    register(store.SegmentTable)


@hookimpl
def register_routes(register: Callable[[Any], None]) -> None:
    register(SegmentController)


@hookimpl
async def dsr_export(subject_id: UUID, context: PluginContext) -> dict[str, Any]:
    """Nothing is held per customer: segment definitions name no one, and memberships are never
    stored (they are evaluated at query time, consent included). Evaluating them here would
    read core tables, which a plugin context may not do; the customer's attributes, events and
    consents are in the core's own export."""
    return {}


@hookimpl
async def dsr_erase(subject_id: UUID, context: PluginContext) -> int:
    """Nothing to erase: memberships are never stored (they are evaluated at query time, so an
    erased customer, gone from `subjects`, is in no segment). Idempotent: always 0 rows."""
    return 0
