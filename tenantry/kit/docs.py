"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), with every script,
stylesheet and icon they load served by this app: FastAPI's defaults load them from a CDN, and
on a host without the internet (an air-gapped deployment) those pages stay blank.

The files come from the `fastapi-offline` package, a dependency installed with the others by
`script/bootstrap`: its `static/` directory holds Swagger UI's bundle and stylesheet, ReDoc's
standalone bundle and a favicon, nothing else. Only those files are used, not its
`FastAPIOffline` factory: the pages are FastAPI's own `get_swagger_ui_html` and `get_redoc_html`,
pointed at our paths.

The assets' URLs carry the package's version (`/docs/assets/1.7.7/swagger-ui-bundle.js`), so a
new release is a new URL and a response can be cached for a year as immutable; an ETag and
Last-Modified (Starlette's `StaticFiles`) answer a revalidation with a 304 all the same. The
files sit behind one route, `/docs/assets/<version>/{path}`, the one metrics label they share
whatever file (or made-up name) is asked for. A route and not a `Mount`: a mount leaves no
route in the scope for `kit.routes` to name, and its requests would all be `<unmatched>`.

None of these routes is in the OpenAPI document.
"""

from __future__ import annotations

import os
from importlib.metadata import version

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

ASSETS_PACKAGE = "fastapi_offline"  # the import name; its distribution is `fastapi-offline`
ASSETS_DIR = "static"
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"
CACHE_CONTROL = "public, max-age=31536000, immutable"


class _Assets(StaticFiles):
    """`StaticFiles` whose answers (200 and 304 alike) say how long to keep them."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = CACHE_CONTROL
        return response


def _relative(path: str) -> str:
    """The URL's file path as `StaticFiles` makes it for a mount (its lookup then keeps to its
    own directory, whatever `..` or `/` the path holds)."""
    return os.path.normpath(os.path.join(*path.split("/")))


def assets_path(docs_url: str = "/docs") -> str:
    """Where the assets are served: under `docs_url`, named by the package's version."""
    return f"{docs_url}/assets/{version('fastapi-offline')}"


def install(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str | None = "/redoc") -> None:
    """Serve Swagger UI at `docs_url` (and its OAuth2 redirect page at the app's
    `swagger_ui_oauth2_redirect_url`), ReDoc at `redoc_url` unless None, and their assets.
    The app is made with `docs_url=None, redoc_url=None`, so that FastAPI adds none of its own.
    Without an OpenAPI document there is nothing to show, and nothing is added."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        return
    assets = assets_path(docs_url)
    # `packages=`: found through the import system; a package without that directory fails
    # here, at start-up, not as a blank page.
    files = _Assets(packages=[(ASSETS_PACKAGE, ASSETS_DIR)])

    async def docs_asset(request: Request) -> Response:
        return await files.get_response(_relative(request.path_params["path"]), request.scope)

    app.add_route(
        f"{assets}/{{path:path}}", docs_asset, methods=["GET", "HEAD"], include_in_schema=False
    )
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url
    # Swagger UI's validator badge would send the document's URL to validator.swagger.io.
    swagger_parameters = {**(app.swagger_ui_parameters or {}), "validatorUrl": None}

    async def swagger_ui_html(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{assets}/{SWAGGER_JS}",
            swagger_css_url=f"{root}{assets}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{assets}/{FAVICON}",
            oauth2_redirect_url=root + oauth2_redirect_url if oauth2_redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=swagger_parameters,
        )

    app.add_route(docs_url, swagger_ui_html, include_in_schema=False)

    if oauth2_redirect_url:

        async def swagger_ui_redirect(request: Request) -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

        app.add_route(oauth2_redirect_url, swagger_ui_redirect, include_in_schema=False)

    if redoc_url is not None:

        async def redoc_html(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "").rstrip("/")
            return get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{assets}/{REDOC_JS}",
                redoc_favicon_url=f"{root}{assets}/{FAVICON}",
                with_google_fonts=False,  # the fonts are another host's; the page falls back
            )

        app.add_route(redoc_url, redoc_html, include_in_schema=False)
