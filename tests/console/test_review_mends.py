"""What a review found: a provider sign-in bound to the browser that started it, `next` kept
to the console's own pages, the data block unbreakable by any customer name, a fingerprint
that must match to be cached for a year, where an ended session sends a form's user, and the
primary read after a console write when there is a replica."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tenantry.config import OidcProvider, Settings
from tenantry.console.crm import first_page
from tenantry.console.router import safe_next
from tenantry.console.sessions import COOKIE, OIDC_COOKIE, after_write
from tenantry.kit.db import Database
from tenantry.kit.deps import WROTE_COOKIE
from tests.support.console import sign_in
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tests.support.platform import make_app, running
from tests.support.world import World


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as p:
        yield p


async def test_a_provider_sign_in_completes_only_in_the_browser_that_started_it(
    settings: Settings, database: Database, provider: Provider, world: World
) -> None:
    member = await world.user(await world.tenant(), login=False)
    provider.email = member.email
    corp = OidcProvider(issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    app = make_app(settings, database, oidc_providers={"corp": corp})
    async with running(app) as victim, running(app) as attacker, httpx.AsyncClient() as idp:
        started = await attacker.get("/console/sign-in/oidc/corp")
        assert started.status_code == 302 and attacker.cookies.get(OIDC_COOKIE)
        at_provider = await idp.get(started.headers["location"])
        back = urlsplit(at_provider.headers["location"])
        callback = f"{back.path}?{back.query}"
        # The attacker's callback, opened by someone else: refused, nobody signed in.
        refused = await victim.get(callback)
        assert refused.status_code == 403 and "not started in this browser" in refused.text
        assert not victim.cookies.get(COOKIE)
        # In the browser that started it: signed in.
        done = await attacker.get(callback)
        assert (done.status_code, done.headers["location"]) == (303, "/console")
        assert attacker.cookies.get(COOKIE)


@pytest.mark.parametrize(
    "target",
    [
        "/consolex",
        "/console/../../evil",
        "/console/%2e%2e/api/v1/users",
        "/console/./sign-in",
        "/console//evil.com",
        "//evil.com",
        "https://evil.example/console",
        "/console\\evil",
        "/console/leads\n",
        "/console/sign-in",
        "/console@evil.com",
        "/console/" + "x" * 600,
        "",
        None,
    ],
)
def test_next_goes_home_unless_it_is_a_console_page(target: str | None) -> None:
    assert safe_next(target) == "/console"


@pytest.mark.parametrize("target", ["/console", "/console/leads?status=won&q=a%26b"])
def test_next_keeps_a_console_page(target: str) -> None:
    assert safe_next(target) == target


def test_no_customer_name_breaks_the_data_block() -> None:
    names = ["<!--<script>", "</script><script>alert(1)</script>", "a & b > c"]
    rows = [{"href": "/console/leads/x", "cells": [n]} for n in names]
    block = first_page(rows, None)
    assert "<" not in block and ">" not in block and "&" not in block
    assert [r["cells"][0] for r in json.loads(block)["rows"]] == names


async def test_only_the_right_fingerprint_is_cached_for_a_year(app: Any) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as browser:
        page = await browser.get("/console/sign-in")
        url = re.search(r'href="(/console/static/console\.css\?v=[0-9a-f]+)"', page.text)
        assert url is not None
        stale = await browser.get(url.group(1).split("?")[0] + "?v=000000000000")
        assert stale.headers["cache-control"] == "no-cache"  # another build's name
        assert (await browser.get("/console/static/nope.js")).status_code == 404


async def test_an_ended_session_sends_a_form_back_to_its_page(app: Any, world: World) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as browser:
        r = await browser.post(
            "/console/webhooks/deliveries/0191e0a2-0000-7000-8000-000000000000/retry",
            data={"csrf": "x"},
            headers={"referer": "http://test/console/webhooks?status=failed"},
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/console/sign-in?next=/console/webhooks"
        long = await browser.get("/console/leads?q=" + "é" * 300)
        assert long.headers["location"] == "/console/sign-in?next=/console/leads"
        page = await browser.get(long.headers["location"])
        assert page.status_code == 200  # the sign-in form, not a 422
        owner = await world.user(await world.tenant(), "owner", login=False)
        await sign_in(browser, owner.email)
        assert (await browser.get("/console/leads?cursor=")).status_code == 200


def test_a_console_write_reads_the_primary_next_when_there_is_a_replica() -> None:
    def request(read_url: str | None) -> Any:
        settings = SimpleNamespace(
            database_read_url=read_url, database_read_max_lag_s=2.0, public_url=None
        )
        return SimpleNamespace(
            app=SimpleNamespace(state=SimpleNamespace(settings=settings)),
            url=SimpleNamespace(scheme="http"),
        )

    with_replica = after_write(request("postgresql://replica/db"), "/console/syncs/1")
    assert with_replica.status_code == 303
    cookie = with_replica.headers["set-cookie"]
    assert cookie.startswith(f"{WROTE_COOKIE}=1") and "Max-Age=3" in cookie
    assert "set-cookie" not in after_write(request(None), "/console/syncs/1").headers


def test_a_browser_that_just_wrote_reads_the_primary() -> None:
    from tenantry.kit.deps import _reads_replica

    def request(method: str, cookies: dict[str, str]) -> Any:
        return SimpleNamespace(scope={"method": method}, cookies=cookies)

    assert _reads_replica(request("GET", {}))
    assert not _reads_replica(request("GET", {WROTE_COOKIE: "1"}))
    assert not _reads_replica(request("POST", {}))
