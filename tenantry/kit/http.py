"""Outbound HTTP to addresses our tenants give us (sync sources, webhook endpoints): one pooled
client with timeouts, retries, a circuit breaker per host, and no way into our own network.

- **Timeouts**: `OUTBOUND_CONNECT_TIMEOUT_S` and `OUTBOUND_READ_TIMEOUT_S` on every request.
- **Retries** (tenacity): timeouts, connection errors and 5xx answers are tried again, up to
  `attempts`, waiting exponentially longer with jitter between tries; anything else (4xx, a
  refused address) is final at once.
- **Circuit breaker per host** (purgatory): after `OUTBOUND_BREAKER_THRESHOLD` failures in a
  row (an error or a 5xx) the host's circuit opens and requests to it fail at once with
  `CircuitOpen` for `OUTBOUND_BREAKER_COOLDOWN_S`; then one request is let through and a
  success closes it again. Per process: each instance learns about a host on its own.
- **SSRF**: a URL must be http(s) and its host must not be or resolve to a loopback, private,
  link-local, multicast, reserved or cloud-metadata address (`check_url`, at creation time,
  gives a 422 naming the field). At connect time the client connects only to an address it
  has just checked (httpx-secure resolves, validates, then dials that very IP), so DNS
  rebinding between the check and the request gets nowhere; decimal, octal and IPv4-mapped
  spellings are resolved before they are judged. Redirects are never followed. Hosts in
  `OUTBOUND_ALLOWLIST` skip the address check (the tests allow 127.0.0.1 that way).

Configured, trusted endpoints (OpenID Connect providers) use `platform.http` instead: an
operator's configuration, not a tenant's input.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpx
from httpx_secure import SSRFProtectionError, httpx_ssrf_protection
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from tenantry.config import Settings
from tenantry.kit.logging import get_logger

log = get_logger("tenantry.http")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class OutboundRefused(ValueError):
    """A URL we will not call: its scheme, or where its host points."""


class CircuitOpen(Exception):
    """The host failed too often lately; no request is sent until its cool-down ends."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host} failed repeatedly; not called until its cool-down ends")
        self.host = host


class UpstreamError(Exception):
    """A 5xx answer: counted by the breaker and retried like a timeout."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.request.url.host} answered {response.status_code}")
        self.response = response


def is_public(ip: IPAddress) -> bool:
    """Globally reachable, looking through IPv4-mapped and NAT64 forms to the IPv4 inside."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_public(ipaddress.IPv4Address(ip.packed[-4:]))
    return bool(ip.is_global) and not ip.is_multicast


async def check_url(url: str, allowlist: Iterable[str] = ()) -> str:
    """`url`, when we may call it; else `OutboundRefused` saying why. Resolves the host
    (every address it has must be public) unless the host is allow-listed."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise OutboundRefused(f"not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        raise OutboundRefused("the URL must start with http:// or https://")
    host = parsed.host
    if not host:
        raise OutboundRefused("the URL has no host")
    if parsed.userinfo:
        raise OutboundRefused("the URL must not carry a user name or password")
    if host in set(allowlist):
        return url
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:  # resolves names and numeric forms alike (2130706433, 0177.0.0.1, ::ffff:7f00:1)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise OutboundRefused(f"the host {host!r} does not resolve") from None
    for *_, address in infos:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
        if not is_public(ip):
            raise OutboundRefused(
                f"the host {host!r} points to {ip}, which is not a public address"
            )
    return url


def _transient(exc: BaseException) -> bool:
    # Not a refused address: httpx-secure's error is a RequestError, not a TransportError.
    return isinstance(exc, UpstreamError | httpx.TimeoutException | httpx.TransportError)


class Outbound:
    """The process's client for tenant-given URLs (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.allowlist = frozenset(settings.outbound_allowlist)
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.outbound_read_timeout_s, connect=settings.outbound_connect_timeout_s
            ),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            follow_redirects=False,
            headers={"User-Agent": "tenantry"},
        )
        self.client = httpx_ssrf_protection(
            client, check_globally_reachable=False, custom_validator=self._admits
        )
        self.breakers = AsyncCircuitBreakerFactory(
            default_threshold=settings.outbound_breaker_threshold,
            default_ttl=settings.outbound_breaker_cooldown_s,
            exclude=[SSRFProtectionError],  # our refusal says nothing of the host's health
        )

    def _admits(self, hostname: str, ip: IPAddress, port: int) -> bool:
        """At connect time, for the address about to be dialled."""
        return hostname in self.allowlist or is_public(ip)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        attempts: int = 3,
        circuit: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call, tried up to `attempts` times; the last 5xx answer comes back as
        `UpstreamError`, an open circuit as `CircuitOpen`, a refused address as
        `httpx_secure.SSRFProtectionError`. The circuit is the host's unless `circuit` names
        another (a webhook endpoint has its own)."""
        host = circuit or httpx.URL(url).host
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            # initial * 2**n, plus up to `initial` of jitter, at most `max`
            wait=wait_exponential_jitter(
                multiplier=self.settings.outbound_retry_initial_s,
                jitter=self.settings.outbound_retry_initial_s,
                max=self.settings.outbound_retry_max_s,
            ),
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(host, method, url, **kwargs)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def _once(self, host: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            breaker = await self.breakers.get_breaker(f"host:{host}")
            async with breaker:
                response = await self.client.request(method, url, **kwargs)
                if response.status_code >= 500:
                    raise UpstreamError(response)
                return response
        except OpenedState:
            raise CircuitOpen(host) from None
