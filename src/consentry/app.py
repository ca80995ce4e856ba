"""The HTTP application: `create_app(settings)` builds it; nothing is read at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

import consentry
from consentry.access.guard import SECURITY, SECURITY_COMPONENTS, authenticate, provide_principal
from consentry.access.routes import ApiKeyController
from consentry.audit_log import routes as audit
from consentry.boot import close_core, load_plugins, open_core
from consentry.clock import Clock, system_clock
from consentry.core.runtime import Core
from consentry.customers.routes import CustomerController
from consentry.dsr import verification
from consentry.dsr.routes import (
    BulkErasureController,
    ExportDownloadController,
    MyRequestController,
    RequestController,
    VerificationController,
)
from consentry.host.routes import PluginController, plugin_routers
from consentry.http.bodies import BoundedRequest
from consentry.http.deps import TYPE_DECODERS, CoreDep, InstantSchema
from consentry.http.docs_ui import asset_routers, render_plugins
from consentry.http.middleware import request_id_middleware
from consentry.http.openapi_document import install as finish_openapi_document
from consentry.http.openapi_document import readable_operation_id
from consentry.http.openapi_responses import document_errors
from consentry.http.problems import EXCEPTION_HANDLERS
from consentry.http.ratelimit import RateLimits
from consentry.ledger.routes import proofs
from consentry.ledger.routes.consents import ConfirmationController, ConsentController
from consentry.ledger.routes.events import EventController
from consentry.ledger.routes.me import MeController
from consentry.ledger.routes.preferences import PreferenceController
from consentry.ledger.routes.purposes import PurposeController
from consentry.settings import Settings


def provide_core(state: State) -> Core:
    core: CoreDep = state.core
    return core


@get(
    "/health",
    tags=["service"],
    summary="Liveness and the policy in force",
    description="Answers 200 while the service runs, with its version, the version (hash) of the"
    " policy in force and the database engine. Needs no credential; not rate limited.",
    operation_id="getHealth",
    security=[],
)
async def health(core: CoreDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "version": consentry.__version__,
        "policy_version": core.policy.version,
        "database": "postgresql" if core.db.is_postgres else "sqlite",
    }


def rate_limits(settings: Settings) -> RateLimits:
    """The limits this process applies (in memory: each instance counts on its own)."""
    if not settings.rate_limits:
        return RateLimits.off()
    return RateLimits(
        key=settings.rate_limit_key_per_minute,
        customer=settings.rate_limit_customer_per_minute,
        anonymous=settings.rate_limit_anonymous_per_minute,
        auth_failures=settings.rate_limit_auth_failures_per_minute,
    )


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Consentry",
        version=consentry.__version__,
        description="Consent ledger, preferences and audit for one company's customers."
        " Errors are application/problem+json.",
        components=SECURITY_COMPONENTS,
        security=SECURITY,
        path="/schema",
        render_plugins=render_plugins(),
        use_handler_docstrings=False,
        operation_id_creator=readable_operation_id,
    )


def create_app(
    settings: Settings, *, clock: Clock = system_clock, core: CoreDep | None = None
) -> Litestar:
    """Build the app; it opens the core at startup unless one is given (tests, benchmarks)."""

    plugins = core.plugins if core is not None else load_plugins(settings)
    verification.warn_if_unavailable(plugins)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.core = await open_core(settings, clock=clock, plugins=plugins)
        try:
            yield
        finally:
            await close_core(app.state.core)

    state = State({"limits": rate_limits(settings), **({"core": core} if core is not None else {})})
    app = Litestar(
        route_handlers=[
            health,
            PurposeController,
            CustomerController,
            ConsentController,
            ConfirmationController,
            PreferenceController,
            EventController,
            MeController,
            ApiKeyController,
            *audit.CONTROLLERS,
            *proofs.CONTROLLERS,
            RequestController,
            ExportDownloadController,
            BulkErasureController,
            MyRequestController,
            VerificationController,
            PluginController,
            *plugin_routers(plugins),
            *asset_routers(),
        ],
        dependencies={
            "core": Provide(provide_core, sync_to_thread=False),
            "principal": Provide(provide_principal),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        guards=[authenticate],
        lifespan=[] if core is not None else [lifespan],
        state=state,
        openapi_config=openapi_config(),
        request_max_body_size=settings.max_body_bytes,
        request_class=BoundedRequest,
        type_decoders=TYPE_DECODERS,
        plugins=[InstantSchema()],
        debug=False,
        logging_config=None,  # consentry.logs configures logging; Litestar's would replace it
    )
    document_errors(app)
    finish_openapi_document(app)
    # Outermost, so unmatched routes and middleware errors get a request id and a log line too.
    app.asgi_handler = request_id_middleware(app.asgi_handler)
    return app
