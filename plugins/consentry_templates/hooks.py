"""The plugin's hook implementations (the contract is `consentry.plugins.hookspecs`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from consentry.plugins import Capability, PluginContext, hookimpl
from consentry_templates.filters import FILTERS
from consentry_templates.render import CAPABILITY
from consentry_templates.routes import TemplateController
from consentry_templates.store import TemplateTable


@hookimpl
def register_capabilities(register: Callable[[Capability], None]) -> None:
    register(
        Capability(
            CAPABILITY,
            ("personalization",),
            "Render a message template with the customer's name, profile and location",
        )
    )


@hookimpl
def register_tables(register: Callable[[type[Any]], None]) -> None:
    register(TemplateTable)


@hookimpl
def register_routes(register: Callable[[Any], None]) -> None:
    register(TemplateController)


@hookimpl
def register_template_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    for name, func in FILTERS.items():
        register(name, func)


@hookimpl
async def dsr_export(subject_id: UUID, context: PluginContext) -> dict[str, Any]:
    """Templates are company content and renders are not stored: nothing about a customer."""
    return {}


@hookimpl
async def dsr_erase(subject_id: UUID, context: PluginContext) -> int:
    """Nothing is stored per customer, so nothing to remove (idempotent: always 0)."""
    return 0
