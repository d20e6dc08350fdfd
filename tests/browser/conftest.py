"""The console in a real browser: Debian's Chromium driven by Playwright (pointed at the
system browser; nothing downloads one), against a real `tenantry serve` on a database of its
own with the demo companies and a few thousand CRM rows. Skipped, with the reason, without
Chromium; under CI=true `script/test` installs it and its absence fails the run.

Every test saves a screenshot of what it checked under var/screenshots/ (the README's come
from there)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.services import IN_CI, create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
PASSWORD = "browser-demo-password"
CUSTOMERS = 1500  # about 3,000 leads: a list far longer than a screen


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(
        self, url: str, process: subprocess.Popen[bytes], log: Path, database: str
    ) -> None:
        self.url, self.process, self.log, self.database = url, process, log, database


@pytest.fixture(scope="session")
def browser_binary() -> str:
    found = chromium()
    if found is None:
        if IN_CI:
            raise AssertionError("CI=true and no Chromium: script/test installs Debian's")
        pytest.skip("no Chromium: `apt-get install chromium` (script/test does under CI=true)")
    return found


@pytest.fixture(scope="session")
def served(
    browser_binary: str, admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    name = f"tenantry_browser_{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(1) as pool:
        url = pool.submit(asyncio.run, create_database(admin_url, name)).result()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_EMBEDDED")},
        "DATABASE_URL": url,
        "DEMO_PASSWORD": PASSWORD,
        "RATE_LIMIT_DEFAULT": "1000000/minute",
        "RATE_LIMIT_AUTH": "1000000/minute",
        "RATE_LIMIT_LOGIN_ACCOUNT": "1000000/minute",
        "JOBS_IN_PROCESS": "true",  # the syncs and deliveries the tests watch run here
        "OUTBOUND_ALLOWLIST": "127.0.0.1",
        "SHUTDOWN_DRAIN_S": "0",
        "LOG_FORMAT": "console",
    }
    env.pop("REDIS_URL", None)
    cli = [sys.executable, "-m", "tenantry.cli"]
    for step in (["migrate"], ["seed", "--demo", "--customers", str(CUSTOMERS)]):
        subprocess.run([*cli, *step], cwd=ROOT, env=env, check=True, capture_output=True)
    port = _free_port()
    log = tmp_path_factory.mktemp("browser") / "server.log"
    process = subprocess.Popen(
        [*cli, "serve", "--no-migrate", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    served = Served(f"http://127.0.0.1:{port}", process, log, url)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(served.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.3)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, drop_database(admin_url, name)).result()


@pytest.fixture(scope="session")
async def browser(browser_binary: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=browser_binary, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Any, served: Served) -> AsyncIterator[Any]:
    """A fresh browser context (no cookies) at 1280 x 800, failing the test on any script
    error or refused resource (a CSP violation is reported as a console error)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.base = served.url  # type: ignore[attr-defined]
    yield tab
    await context.close()
    assert not errors, errors


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


async def sign_in(page: Any, email: str = "owner@acme.example", then: str = "/console") -> None:
    """With the keyboard only: Tab to each field, type, Enter."""
    await page.goto(page.base + "/console/sign-in?next=" + then)
    await page.focus("#email")
    await page.keyboard.type(email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    # (a glob on `then` would match the sign-in page's own URL, which names it in `next`)
    await page.wait_for_url(lambda url: "/console/sign-in" not in url)


async def api_login(served: Served, email: str = "owner@acme.example") -> dict[str, str]:
    """A bearer header for the API of the same server (to set up what the page shows)."""
    async with httpx.AsyncClient(base_url=served.url) as api:
        r = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}
