"""Signing in to the console the way a browser does: the sign-in page's CSRF cookie and field,
the form posted, the session cookie kept by the client."""

from __future__ import annotations

import re

import httpx

from tests.support.world import PASSWORD

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field in the page"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, next_: str = "/console"
) -> httpx.Response:
    form = await client.get("/console/sign-in")
    assert form.status_code == 200, form.text
    return await client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(form.text), "next": next_, "email": email, "password": password},
    )
