"""Templates: sandboxed Liquid templates rendered from the gate's view of one customer.

Modules: `sandbox` (environments and limits), `variables` (what a capability may read; the
strict check), `render` (check, render, preview through the gate), `store` (the table),
`routes` (HTTP), `filters` (this plugin's filters), `hooks` (the hook implementations, exposed
here for pluggy).
"""

from consentry_templates.hooks import (
    dsr_erase,
    dsr_export,
    register_capabilities,
    register_routes,
    register_tables,
    register_template_filters,
)

__version__ = "0.1.0"

__all__ = [
    "dsr_erase",
    "dsr_export",
    "register_capabilities",
    "register_routes",
    "register_tables",
    "register_template_filters",
]
