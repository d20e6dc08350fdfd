"""Outbound HTTP (`kit.http`) against a real server on 127.0.0.1: retries, the breaker, no
redirects, and no way into private addresses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from httpx_secure import SSRFProtectionError

from tenantry.config import Settings
from tenantry.kit.http import CircuitOpen, Outbound, OutboundRefused, UpstreamError, check_url
from tests.support.http_source import Source, serving


@pytest.fixture
async def source() -> AsyncIterator[Source]:
    async with serving(Source()) as running:
        yield running


def outbound(settings: Settings, **overrides: object) -> Outbound:
    quick = {
        "outbound_allowlist": ["127.0.0.1"],
        "outbound_retry_initial_s": 0.01,
        "outbound_retry_max_s": 0.02,
        "outbound_read_timeout_s": 0.5,
        "outbound_breaker_threshold": 3,
        "outbound_breaker_cooldown_s": 1,
    }
    return Outbound(settings.model_copy(update={**quick, **overrides}))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/",
        "http://10.0.0.1/",
        "http://192.168.1.20/",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/",  # 127.0.0.1 as a decimal number
        "http://0177.0.0.1/",  # and in octal
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
        "http://[::ffff:a9fe:a9fe]/",  # 169.254.169.254, mapped and in hex
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
async def test_private_and_metadata_addresses_are_refused(url: str) -> None:
    with pytest.raises(
        OutboundRefused, match=r"not a public address|does not resolve|not a valid URL"
    ):
        await check_url(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("https://user:secret@example.com/", "user name or password"),
        ("http:///nohost", "no host"),
    ],
)
async def test_urls_of_the_wrong_shape_are_refused(url: str, why: str) -> None:
    with pytest.raises(OutboundRefused, match=why):
        await check_url(url)


async def test_a_public_address_and_an_allowlisted_host_pass() -> None:
    assert await check_url("https://93.184.215.14/hook") == "https://93.184.215.14/hook"
    assert await check_url("http://127.0.0.1:9/x", ["127.0.0.1"]) == "http://127.0.0.1:9/x"


async def test_the_client_will_not_connect_to_a_private_address(
    settings: Settings, source: Source
) -> None:
    """Even for a URL that skipped `check_url` (or whose DNS changed since): the address is
    checked when the connection is made."""
    client = outbound(settings, outbound_allowlist=[])
    try:
        with pytest.raises(SSRFProtectionError):
            await client.request("GET", source.url + "/echo")
        assert source.switches.calls == 0
    finally:
        await client.aclose()


async def test_5xx_and_timeouts_are_retried(settings: Settings, source: Source) -> None:
    client = outbound(settings)
    try:
        source.switches.fail_next = 2
        r = await client.request("GET", source.url + "/echo", attempts=3)
        assert r.status_code == 200 and source.switches.calls == 3

        source.switches.delay_s, source.switches.delay_next = 1.0, 1  # past the 0.5 s timeout
        r = await client.request("GET", source.url + "/echo", attempts=2)
        assert r.status_code == 200 and source.switches.calls == 5

        source.switches.fail_next = 5
        with pytest.raises(UpstreamError, match="500"):
            await client.request("GET", source.url + "/echo", attempts=2)
    finally:
        await client.aclose()


async def test_a_4xx_is_final_and_redirects_are_not_followed(
    settings: Settings, source: Source
) -> None:
    client = outbound(settings)
    try:
        source.switches.fail_next, source.switches.fail_status = 1, 404
        r = await client.request("GET", source.url + "/echo", attempts=3)
        assert r.status_code == 404 and source.switches.calls == 1
        r = await client.request("GET", source.url + "/redirect")
        assert r.status_code == 302 and source.switches.calls == 2
    finally:
        await client.aclose()


async def test_the_breaker_opens_after_failures_and_closes_after_its_cool_down(
    settings: Settings, source: Source
) -> None:
    client = outbound(settings)
    try:
        source.switches.fail_next = 3
        for _ in range(3):
            with pytest.raises(UpstreamError):
                await client.request("GET", source.url + "/echo", attempts=1)
        with pytest.raises(CircuitOpen):
            await client.request("GET", source.url + "/echo", attempts=1)
        assert source.switches.calls == 3  # the open circuit sent nothing
        await asyncio.sleep(1.1)  # the cool-down
        r = await client.request("GET", source.url + "/echo", attempts=1)
        assert r.status_code == 200
        r = await client.request("GET", source.url + "/echo", attempts=1)  # closed again
        assert r.status_code == 200 and source.switches.calls == 5
    finally:
        await client.aclose()


def test_the_allowlist_setting_takes_a_comma_separated_list() -> None:
    s = Settings(_env_file=None, outbound_allowlist="127.0.0.1, hooks.internal")  # type: ignore[arg-type]
    assert s.outbound_allowlist == ["127.0.0.1", "hooks.internal"]
