"""Console sessions: the cookie's flags, CSRF on every form, the CSP, sign-out on every
instance, and what a page answers without a session."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tenantry.config import Settings
from tenantry.console.sessions import COOKIE
from tenantry.kit.db import Database
from tests.support.console import csrf_of, sign_in
from tests.support.platform import make_app, running
from tests.support.world import World

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)


def client_for(app: Any, base_url: str = "http://test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def test_signing_in_sets_a_locked_down_cookie_and_goes_where_asked(
    app: Any, world: World
) -> None:
    member = await world.user(await world.tenant(), login=False)
    async with client_for(app) as browser:
        r = await sign_in(browser, member.email, next_="/console/customers")
        assert (r.status_code, r.headers["location"]) == (303, "/console/customers")
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and COOKIE in v)
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "path=/console", "samesite=lax"} <= flags
        assert "secure" not in flags  # plain HTTP here: a Secure cookie would never come back
        page = await browser.get("/console/customers")
        assert page.status_code == 200, page.text
        assert "Sign out" in page.text
    async with client_for(app, "https://test") as tls:
        r = await sign_in(tls, member.email)
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and COOKIE in v)
        assert "secure" in cookie.lower()


async def test_a_wrong_password_or_a_missing_csrf_token_signs_nobody_in(
    app: Any, world: World
) -> None:
    member = await world.user(await world.tenant(), login=False)
    async with client_for(app) as browser:
        wrong = await sign_in(browser, member.email, password="not it")
        assert wrong.status_code == 401 and "email or password is wrong" in wrong.text
        assert f"{COOKIE}=" not in wrong.headers.get("set-cookie", "")
        await browser.get("/console/sign-in")  # the CSRF cookie is set, but not sent back
        forged = await browser.post(
            "/console/sign-in",
            data={"email": member.email, "password": "correct horse battery staple"},
        )
        assert forged.status_code == 403 and "form expired" in forged.text
        assert f"{COOKIE}=" not in forged.headers.get("set-cookie", "")


async def test_pages_need_a_session_and_say_where_to_get_one(app: Any) -> None:
    async with client_for(app) as browser:
        r = await browser.get("/console/leads?status=won")
        assert r.status_code == 303
        assert r.headers["location"] == "/console/sign-in?next=/console/leads%3Fstatus%3Dwon"
        rows = await browser.get("/console/leads/rows", headers={"accept": "application/json"})
        assert rows.status_code == 401  # a script's fetch gets the problem, not a redirect
        assert rows.headers["content-type"] == "application/problem+json"
        browser.cookies.set(COOKIE, "x" * 43, path="/console")  # no such session
        assert (await browser.get("/console/leads")).status_code == 303


async def test_every_page_runs_under_the_csp_without_inline_script(app: Any, world: World) -> None:
    owner = await world.user(await world.tenant(), "owner", login=False)
    async with client_for(app) as browser:
        sign_in_page = await browser.get("/console/sign-in")
        await sign_in(browser, owner.email)
        for path in ("/console/leads", "/console/customers"):
            for r in (sign_in_page, await browser.get(path)):
                csp = r.headers["content-security-policy"]
                assert "script-src 'self'" in csp and "unsafe-inline" not in csp
                assert "frame-ancestors 'none'" in csp
                assert r.headers["cache-control"] == "no-store"
                assert not _INLINE_SCRIPT.search(r.text), path
                assert " style=" not in r.text  # inline styles are refused by the CSP too


async def test_signing_out_needs_the_form_s_token_and_ends_the_session_everywhere(
    settings: Settings, database: Database, world: World
) -> None:
    member = await world.user(await world.tenant(), login=False)
    first, second = make_app(settings, database), make_app(settings, database)
    async with running(first) as a, running(second) as b:
        await sign_in(a, member.email)
        session = a.cookies.get(COOKIE)
        assert session
        b.cookies.set(COOKIE, session, path="/console")
        leads = await b.get("/console/leads")  # the other instance knows the session
        assert leads.status_code == 200
        refused = await a.post("/console/sign-out", data={"csrf": "not the token"})
        assert refused.status_code == 403
        assert (await a.get("/console/leads")).status_code == 200  # still signed in
        out = await a.post("/console/sign-out", data={"csrf": csrf_of(leads.text)})
        assert (out.status_code, out.headers["location"]) == (303, "/console/sign-in")
        assert (await b.get("/console/leads")).status_code == 303  # gone there too


async def test_a_revoked_token_ends_the_console_session(app: Any, world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    member = await world.user(tenant, login=False)
    async with client_for(app) as browser:
        await sign_in(browser, member.email)
        assert (await browser.get("/console/leads")).status_code == 200
        r = await world.client.patch(
            f"/api/v1/users/{member.id}", json={"is_active": False}, headers=owner.headers
        )
        assert r.status_code == 200, r.text
        assert (await browser.get("/console/leads")).status_code == 303


async def test_the_fingerprinted_assets_are_cached_for_a_year(app: Any) -> None:
    async with client_for(app) as browser:
        page = await browser.get("/console/sign-in")
        urls = re.findall(r'(?:href|src)="(/console/static/[^"]+\?v=[0-9a-f]{12})"', page.text)
        assert len(urls) == 2  # the stylesheet and the script
        for url in urls:
            r = await browser.get(url)
            assert r.status_code == 200
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        bare = await browser.get(urls[0].split("?")[0])
        assert bare.headers["cache-control"] == "no-cache"
