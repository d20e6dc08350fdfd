"""Rendering: the Jinja2 environment, the page response with its headers, asset URLs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

HERE = Path(__file__).parent
STATIC = HERE / "static"

# No inline script or style anywhere (`static/` only); the SVG charts are drawn with
# presentation attributes, which CSP does not govern. Nothing may frame a console page.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a misspelt variable is an error in the tests, not a blank
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fingerprints() -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        for p in STATIC.iterdir()
        if p.is_file()
    }


_FINGERPRINTS = _fingerprints()


def asset(name: str) -> str:
    """A static file's URL, fingerprinted: cached for a year, renamed by any change."""
    return f"/console/static/{name}?v={_FINGERPRINTS[name]}"


env.globals["asset"] = asset


def asset_response(name: str, version: str | None) -> Response | None:
    """One of our static files (only those: the name is looked up, never joined blindly),
    cached by browsers for a year when asked for by its own fingerprint (`asset()`: any
    change renames it) and revalidated otherwise: in a rolling deploy an old instance asked
    for a new fingerprint must not let its old file be kept for a year. None for any other
    name."""
    fingerprint = _FINGERPRINTS.get(name)
    if fingerprint is None:
        return None
    cache = "public, max-age=31536000, immutable" if version == fingerprint else "no-cache"
    return FileResponse(STATIC / name, headers={"cache-control": cache})


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A page: rendered, private, never cached, under the CSP."""
    html = env.get_template(template).render(request=request, **context)
    return HTMLResponse(
        html,
        status_code=status,
        headers={"content-security-policy": CSP, "cache-control": "no-store"},
    )
