"""The documentation pages load nothing from another host: every script, stylesheet and icon
they name is served by the app itself (`kit.docs`), cacheable, through the edge middleware."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from tenantry.kit import docs
from tests.support.platform import metric_samples

PAGES = ["/docs", "/redoc"]


class _Assets(HTMLParser):
    """The page's `<script src>` and `<link href>` URLs, each with what it is."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []  # (kind, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.found.append(("script", attributes["src"] or ""))
        elif tag == "link" and attributes.get("href"):
            rel = set((attributes.get("rel") or "").lower().split())
            kind = "stylesheet" if "stylesheet" in rel else "icon" if "icon" in rel else "other"
            self.found.append((kind, attributes["href"] or ""))


def _assets(html: str) -> list[tuple[str, str]]:
    parser = _Assets()
    parser.feed(html)
    return parser.found


EXPECTED_TYPES = {
    "script": ("text/javascript", "application/javascript"),
    "stylesheet": ("text/css",),
    "icon": ("image/",),
}


@pytest.mark.parametrize("page", PAGES)
async def test_page_loads_only_what_the_app_serves(client: httpx.AsyncClient, page: str) -> None:
    r = await client.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "http://" not in r.text
    assert "https://" not in r.text  # no CDN, no web fonts, no validator badge
    assets = _assets(r.text)
    kinds = {kind for kind, _ in assets}
    assert {"script", "icon"} <= kinds, assets
    if page == "/docs":
        assert "stylesheet" in kinds, assets
    for kind, url in assets:
        parts = urlsplit(url)
        # same origin: a path on this host, never a scheme, a host or a protocol-relative //
        assert not parts.scheme, url
        assert not parts.netloc, url
        assert url.startswith("/") and not url.startswith("//"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
        assert asset.headers["content-type"].startswith(EXPECTED_TYPES[kind]), (url, asset.headers)


async def test_assets_are_cacheable(client: httpx.AsyncClient) -> None:
    url = f"{docs.assets_path()}/{docs.SWAGGER_JS}"
    r = await client.get(url)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    etag = r.headers["etag"]
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == r.headers["cache-control"]
    assert not again.content
    head = await client.head(url)
    assert head.status_code == 200
    assert head.headers["etag"] == etag


async def test_assets_pass_through_the_edge(client: httpx.AsyncClient) -> None:
    """gzip, the request id and the security headers, as for any response."""
    url = f"{docs.assets_path()}/{docs.SWAGGER_CSS}"
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    zipped = await client.get(url, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx decoded it
    for r in (plain, zipped):
        assert r.headers["x-request-id"]
        assert r.headers["x-content-type-options"] == "nosniff"


async def test_unknown_asset_is_a_problem_not_a_crash(client: httpx.AsyncClient) -> None:
    for url in (
        f"{docs.assets_path()}/nope.js",
        f"{docs.assets_path()}/../../openapi.json",
        "/docs/assets/0.0.0/swagger-ui.css",
    ):
        r = await client.get(url)
        assert r.status_code == 404, url
        assert r.headers["content-type"] == "application/problem+json"
    r = await client.post(f"{docs.assets_path()}/{docs.SWAGGER_JS}")
    assert r.status_code == 405


async def test_oauth2_redirect_page(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs/oauth2-redirect")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "https://" not in r.text and "http://" not in r.text


async def test_openapi_document_leaves_the_docs_out(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in spec["paths"]:
        assert not path.startswith(("/docs", "/redoc")), path


async def test_assets_share_one_metrics_label(client: httpx.AsyncClient) -> None:
    base = docs.assets_path()
    for name in (docs.SWAGGER_JS, docs.SWAGGER_CSS, docs.FAVICON, docs.REDOC_JS, "made-up.js"):
        await client.get(f"{base}/{name}")
    routes = {
        labels["route"]
        for labels, _ in (await metric_samples(client))["tenantry_http_requests_total"]
    }
    assert f"{base}/{{path}}" in routes
    assert not [route for route in routes if route.startswith(base) and "{path}" not in route]
