"""The API docs pages, from local assets: Swagger UI at /schema (and /schema/swagger), Redoc at
/schema/redoc. No CDN: the docs work offline, and no third party learns who reads them.

Swagger UI's files come from the `swagger-ui-bundle-v2` package (the official swagger-ui-dist
files, byte for byte); Redoc's standalone bundle ships with Consentry in `static/redoc/` (see
its README). Both are served under /schema/static/, with no credential, like the pages.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.openapi.plugins import OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

STATIC = "/schema/static"
SWAGGER = f"{STATIC}/swagger-ui"
REDOC = f"{STATIC}/redoc"
REDOC_DIR = Path(__file__).parent / "static" / "redoc"
FAVICON = f"<link rel='icon' type='image/png' href='{SWAGGER}/favicon-32x32.png'>"


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI first (it answers /schema itself), then Redoc."""
    return [
        SwaggerRenderPlugin(
            js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            css_url=f"{SWAGGER}/swagger-ui.css",
            standalone_preset_js_url=f"{SWAGGER}/swagger-ui-standalone-preset.js",
            favicon=FAVICON,
        ),
        RedocRenderPlugin(
            js_url=f"{REDOC}/redoc.standalone.js", google_fonts=False, favicon=FAVICON
        ),
    ]


def asset_routers() -> list[Router]:
    return [
        create_static_files_router(
            path=SWAGGER,
            directories=[Path(str(swagger_ui_path))],
            include_in_schema=False,
            name="swagger-ui-assets",
        ),
        create_static_files_router(
            path=REDOC, directories=[REDOC_DIR], include_in_schema=False, name="redoc-assets"
        ),
    ]
