"""Platform staff's pages: 404 pages to anyone else; the funnel's chart and table hold the
admin API's numbers; the caches' hit rates are the cache stats API's; a deferred job shows in
its queue with its age; every page under the CSP, in a constant number of queries."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import httpx

from tenantry.console.charts import percent
from tenantry.console.web import CSP
from tests.console.test_sign_in import _INLINE_SCRIPT
from tests.onboarding.test_profile import SEED_PROFILE
from tests.support.console import csrf_of, sign_in
from tests.support.world import World

PAGES = (
    "/console/platform/tenants",
    "/console/platform/funnel",
    "/console/platform/caches",
    "/console/platform/jobs",
)
ONBOARDING = "/api/v1/onboarding"


def browser_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _staff(world: World) -> Any:
    operator = await world.tenant()
    return await world.user(operator, "admin", account_type="internal_employee")


async def _onboard(world: World, *, priced: bool, completed: bool) -> str:
    email = f"owner-{datetime.now(UTC).timestamp()}-{id(object())}@corp.example"
    r = await world.client.post(
        f"{ONBOARDING}/company-profile", json={**SEED_PROFILE, "user_email": email}
    )
    assert r.status_code == 201, r.text
    session_id = str(r.json()["session_id"])
    if priced:
        r = await world.client.post(
            f"{ONBOARDING}/pricing", json={"session_id": session_id, "suites": ["analytics"]}
        )
        assert r.status_code == 201, r.text
    if completed:
        r = await world.client.post(
            f"{ONBOARDING}/complete-demo-experience",
            json={"session_id": session_id, "password": "a long enough password"},
        )
        assert r.status_code == 201, r.text
    return session_id


async def test_staff_pages_do_not_exist_for_a_company_s_owner_or_member(
    app: Any, world: World
) -> None:
    tenant = await world.tenant()
    for role in ("owner", "member"):
        someone = await world.user(tenant, role, login=False)
        async with browser_for(app) as browser:
            await sign_in(browser, someone.email)
            home = await browser.get("/console/customers")
            assert "/console/platform/" not in home.text  # no link to them either
            for path in PAGES:
                r = await browser.get(path)
                assert r.status_code == 404, (role, path, r.status_code)
                assert r.headers["content-type"].startswith("text/html")
                assert "There is no such page." in r.text
            cleared = await browser.post(
                "/console/platform/caches/clear", data={"csrf": csrf_of(home.text)}
            )
            assert cleared.status_code == 404


async def test_every_staff_page_is_a_page_under_the_csp_for_a_platform_admin(
    app: Any, world: World
) -> None:
    staff = await _staff(world)
    async with browser_for(app) as browser:
        await sign_in(browser, staff.email)
        for path in PAGES:
            r = await browser.get(path)
            assert r.status_code == 200, (path, r.text)
            assert r.headers["content-security-policy"] == CSP
            assert _INLINE_SCRIPT.search(r.text) is None, path
            assert " style=" not in r.text and "<style" not in r.text, path
            section = path.rsplit("/", 1)[1]
            assert f'href="{path}" aria-current="page"' in r.text, section
        out_of_range = await browser.get("/console/platform/funnel?days=400")
        assert out_of_range.status_code == 422
        assert out_of_range.headers["content-type"].startswith("text/html")


def _panels(html: str) -> dict[str, tuple[list[int], list[int], list[str]]]:
    """Per step: the bars' values, the values written above them, their titles."""
    found = {}
    for step, body in re.findall(r'<g class="panel" data-step="(\w+)">(.*?)</g>', html, re.S):
        bars = [int(v) for v in re.findall(r'data-value="(\d+)"', body)]
        texts = [int(v) for v in re.findall(r'<text class="value"[^>]*>(\d+)</text>', body)]
        titles = re.findall(r"<title>([^<]*)</title>", body)
        found[step] = (bars, texts, titles)
    return found


def _table(html: str) -> dict[str, dict[str, int]]:
    rows = re.findall(r'<tr data-date="([\d-]+)">(.*?)</tr>', html, re.S)
    return {
        day: {s: int(n) for s, n in re.findall(r'data-step="(\w+)">(\d+)</td>', cells)}
        for day, cells in rows
    }


async def test_the_funnel_draws_the_admin_api_s_numbers(app: Any, world: World) -> None:
    await _onboard(world, priced=True, completed=True)
    await _onboard(world, priced=True, completed=False)
    await _onboard(world, priced=False, completed=False)
    staff = await _staff(world)
    today = datetime.now(UTC).date()
    api = await world.client.get(
        f"/api/v1/admin/onboarding/funnel?from={today - timedelta(days=6)}&to={today}",
        headers=staff.headers,
    )
    assert api.status_code == 200, api.text
    body = api.json()
    assert body["steps"][0]["sessions"] >= 3  # profiles: these three, and any committed
    async with browser_for(app) as browser:
        await sign_in(browser, staff.email)
        r = await browser.get("/console/platform/funnel?days=7")
        assert r.status_code == 200, r.text
    html = r.text
    svg = re.search(r"<svg.*?</svg>", html, re.S)
    assert svg is not None
    chart = svg.group(0)
    ElementTree.fromstring(chart)  # well-formed: an SVG parser would take it
    assert 'role="img"' in chart and 'aria-labelledby="funnel-title funnel-desc"' in chart
    assert '<title id="funnel-title">' in chart and '<desc id="funnel-desc">' in chart
    assert chart.count("<pattern ") >= 3 and 'fill="url(#pattern-hatch)"' in chart
    panels = _panels(chart)
    given = {d["date"]: d for d in body["days"]}  # the API leaves out days without sessions
    days = [str(today - timedelta(days=6 - i)) for i in range(7)]
    table = _table(html)
    assert list(table) == days
    for step in ("profile", "pricing_viewed", "completed"):
        column = [given[d][step] if d in given else 0 for d in days]
        bars, texts, titles = panels[step]
        assert bars == column == texts == [table[d][step] for d in days], step
        assert titles[-1] == f"{step}, {today}: {column[-1]} sessions"
        total = next(s["sessions"] for s in body["steps"] if s["step"] == step)
        assert f"{step}: {total} sessions" in chart
    for s in body["steps"][1:]:
        row = re.search(rf'<tr data-step="{s["step"]}">(.*?)</tr>', html, re.S)
        assert row is not None
        assert f'<td class="num">{s["sessions"]}</td>' in row.group(1)
        assert percent(s["rate_from_previous"]) in row.group(1)
        assert f"({percent(s['rate_from_previous'])} of" in chart  # said in the description


async def test_the_caches_page_shows_the_stats_api_s_hit_rates(app: Any, world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    for _ in range(3):
        assert (await world.client.get("/api/v1/tenant", headers=owner.headers)).status_code == 200
    staff = await _staff(world)
    async with browser_for(app) as browser:
        await sign_in(browser, staff.email)
        api = await world.client.get("/api/v1/admin/cache/stats", headers=staff.headers)
        r = await browser.get("/console/platform/caches")
    tenant = next(c for c in api.json()["caches"] if c["name"] == "tenant")
    assert tenant["hits"] >= 2
    row = re.search(r'<tr id="cache-tenant">(.*?)</tr>', r.text, re.S)
    assert row is not None
    cells = dict(re.findall(r'data-field="(\w+)">([^<]*)</td>', row.group(1)))
    assert cells == {
        "hits": str(tenant["hits"]),
        "misses": str(tenant["misses"]),
        "hit_rate": percent(tenant["hit_rate"]),
    }
    assert f"{tenant['size']} / {tenant['max_size']}" in row.group(1)
    assert 'aria-label="Clear tenant"' in row.group(1)


async def test_clearing_a_cache_takes_the_form_s_token_and_empties_it(
    app: Any, world: World
) -> None:
    owner = await world.user(await world.tenant(), "owner")
    await world.client.get("/api/v1/tenant", headers=owner.headers)
    staff = await _staff(world)
    async with browser_for(app) as browser:
        await sign_in(browser, staff.email)
        page = await browser.get("/console/platform/caches")
        forged = await browser.post("/console/platform/caches/clear", data={"cache": "tenant"})
        assert forged.status_code == 403
        r = await browser.post(
            "/console/platform/caches/clear", data={"csrf": csrf_of(page.text), "cache": "tenant"}
        )
        assert (r.status_code, r.headers["location"]) == (
            303,
            "/console/platform/caches?cleared=tenant",
        )
        after = await browser.get(r.headers["location"])
        assert "Cleared on every instance: tenant." in after.text
        api = await world.client.get("/api/v1/admin/cache/stats", headers=staff.headers)
        assert next(c for c in api.json()["caches"] if c["name"] == "tenant")["size"] == 0
        unknown = await browser.post(
            "/console/platform/caches/clear", data={"csrf": csrf_of(page.text), "cache": "nope"}
        )
        assert unknown.status_code == 404


def _queue(html: str, name: str) -> dict[str, str]:
    row = re.search(rf'<tr id="queue-{name}">(.*?)</tr>', html, re.S)
    if row is None:
        return {"queued": "0"}
    return dict(re.findall(r'data-field="(\w+)"[^>]*>(?:<span[^>]*>)?([^<]*)<', row.group(1)))


async def test_a_deferred_job_shows_in_its_queue_with_its_age(app: Any, world: World) -> None:
    staff = await _staff(world)
    async with browser_for(app) as browser:
        await sign_in(browser, staff.email)
        before = int(_queue((await browser.get("/console/platform/jobs")).text, "mail")["queued"])
        await _onboard(world, priced=False, completed=True)  # queues the welcome mail
        r = await browser.get("/console/platform/jobs")
    mail = _queue(r.text, "mail")
    assert int(mail["queued"]) == before + 1
    assert re.fullmatch(r"\d+ (s|min \d+ s|h \d+ min|d \d+ h)", mail["oldest"]), mail
    seconds = re.search(r'<tr id="queue-mail">.*?data-seconds="([\d.]+)"', r.text, re.S)
    assert seconds is not None and float(seconds.group(1)) >= 0
    assert "Latest failures" in r.text


async def test_each_page_runs_the_same_queries_however_many_tenants(app: Any, world: World) -> None:
    staff = await _staff(world)
    async with browser_for(app) as browser:
        await sign_in(browser, staff.email)
        for path in PAGES:
            await browser.get(path)  # who they are is cached after this
        before = {p: (await browser.get(p)).headers["x-db-queries"] for p in PAGES}
        for _ in range(4):
            tenant = await world.tenant()
            await world.user(tenant, "owner", login=False)
        after = {p: (await browser.get(p)).headers["x-db-queries"] for p in PAGES}
        listed = await browser.get("/console/platform/tenants?per_page=100")
    assert before == after
    assert int(after["/console/platform/caches"]) <= int(after["/console/platform/tenants"])
    # the newest first, each with its user count
    newest = re.search(r'<tr id="tenant-[^"]+">.*?<td class="num">(\d+)</td>', listed.text, re.S)
    assert newest is not None and newest.group(1) == "1"
