"""Signing in, filtering leads, scrolling a long list, at 1280 and at 360 px, with the
keyboard where a user without a mouse would."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import CUSTOMERS, shot, sign_in


async def test_sign_in_with_the_keyboard_and_see_the_demo_leads(page: Any) -> None:
    await sign_in(page, then="/console/leads")
    await page.wait_for_selector(".vlist.live .vlist-row")
    assert await page.inner_text("h1") == "Leads"
    assert "Ada Acme" in await page.inner_text(".who")
    cookie = next(c for c in await page.context.cookies() if c["name"] == "tenantry_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/console"
    assert await page.evaluate("document.cookie") == ""  # nothing a script could read
    await shot(page, "leads")


async def test_filter_leads_by_status(page: Any) -> None:
    await sign_in(page, then="/console/leads")
    await page.select_option("#status", "won")
    await page.click("button:text('Filter')")
    await page.wait_for_url("**status=won**")
    await page.wait_for_selector(".vlist.live .vlist-row")
    statuses = await page.eval_on_selector_all(
        ".vlist-row span:nth-child(2)", "cells => cells.map(c => c.textContent)"
    )
    assert statuses and set(statuses) == {"won"}
    await shot(page, "leads-won")


async def test_scroll_a_long_list_keeping_only_what_is_visible(page: Any) -> None:
    await sign_in(page, then="/console/leads")
    await page.wait_for_selector(".vlist.live .vlist-row")
    viewport = page.locator(".vlist-viewport")
    most = 0
    for _ in range(60):  # about 1,000 rows down, pages fetched on the way
        await viewport.evaluate("v => { v.scrollTop += 800; }")
        await page.wait_for_timeout(30)
        most = max(most, await page.locator(".vlist-row").count())
    await page.wait_for_function(
        "() => !document.querySelector('.vlist-status').textContent.startsWith('Loading')"
    )
    index = await page.eval_on_selector_all(
        ".vlist-row", "rows => Math.max(...rows.map(r => Number(r.getAttribute('aria-rowindex'))))"
    )
    loaded = await page.inner_text(".vlist-status")
    assert index > 900, index
    assert most < 60, most  # the document holds the visible rows, not the thousand passed
    assert int(loaded.split()[0].rstrip("+")) < 2 * CUSTOMERS  # not everything was fetched
    await shot(page, "leads-scrolled")
    # and the keyboard: End goes to the last row loaded, Home back to the first
    await viewport.focus()
    await page.keyboard.press("Home")
    first = await page.evaluate("document.activeElement.getAttribute('aria-rowindex')")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    third = await page.evaluate("document.activeElement.getAttribute('aria-rowindex')")
    assert (first, third) == ("1", "3")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/leads/*")
    await page.wait_for_selector("h2:text('Timeline')")
    await shot(page, "lead")


async def test_readable_at_360_px(page: Any) -> None:
    await page.set_viewport_size({"width": 360, "height": 740})
    await sign_in(page, then="/console/customers")
    await page.wait_for_selector(".vlist.live .vlist-row")
    overflow = await page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 360, overflow  # nothing sideways
    await shot(page, "customers-360")


async def test_every_page_fits_360_px_and_starts_with_a_skip_link(page: Any) -> None:
    await page.set_viewport_size({"width": 360, "height": 740})
    company = ("leads", "customers", "syncs", "webhooks")
    platform = ("tenants", "funnel", "caches", "jobs")
    pages = {
        "owner@acme.example": [f"/console/{name}" for name in company],
        "admin@tenantry.example": [f"/console/platform/{name}" for name in platform],
    }
    for email, paths in pages.items():
        await page.context.clear_cookies()
        await sign_in(page, email, then=paths[0])
        for path in paths:
            await page.goto(page.base + path)
            await page.wait_for_selector("h1")
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)  # wide tables scroll inside their box
            await page.keyboard.press("Tab")
            first = await page.evaluate("document.activeElement.textContent.trim()")
            assert first == "Skip to content", path
