"""The OpenID Connect client side: discovery, JWKS, the code exchange, and ID token checks.

Signatures and claims are verified by joserfc; only asymmetric algorithms are accepted (never
`none`, never an HMAC keyed by the client secret). Discovery documents and key sets are kept
an hour in named in-process caches (one fetch however many logins start at once); a token
signed with a key id we do not know makes us fetch the key set again, once, for key rotation.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from tenantry.config import OidcProvider
from tenantry.kit.cache import CacheSpec, declare
from tenantry.kit.caches import Caches
from tenantry.kit.errors import AppError, NotFound, Unauthorized

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
METADATA_CACHE: CacheSpec[dict[str, Any]] = declare("oidc_metadata", ttl_s=3600, max_size=100)
JWKS_CACHE: CacheSpec[KeySet] = declare("oidc_jwks", ttl_s=3600, max_size=100)
CLOCK_SKEW_S = 60


class UnknownProvider(NotFound):
    slug, title = "unknown-oidc-provider", "Unknown login provider"


class ProviderUnavailable(AppError):
    status, slug, title = 502, "oidc-provider-unavailable", "Login provider unavailable"


class OidcRefused(Unauthorized):
    """The provider, its token response or its ID token failed a check; `detail` says which."""

    slug, title = "oidc-login-refused", "Login with the provider refused"


def s256_challenge(verifier: str) -> str:
    """PKCE `S256` (RFC 7636 section 4.2): BASE64URL(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcClient:
    def __init__(
        self,
        providers: dict[str, OidcProvider],
        caches: Caches,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.providers = providers
        self.clock = clock
        self.http = http  # the process's pooled outbound client
        self._metadata = caches.cache(METADATA_CACHE)
        self._jwks = caches.cache(JWKS_CACHE)

    def provider(self, name: str) -> OidcProvider:
        provider = self.providers.get(name)
        if provider is None:
            known = ", ".join(sorted(self.providers)) or "none are configured"
            raise UnknownProvider(f"No login provider named {name!r} ({known}).")
        return provider

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"The login provider did not answer {url}: {exc}") from exc
        if not isinstance(body, dict):
            raise ProviderUnavailable(f"The login provider answered {url} with no JSON object.")
        return body

    async def metadata(self, name: str) -> dict[str, Any]:
        provider = self.provider(name)

        async def discover() -> dict[str, Any]:
            url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
            meta = await self._get_json(url)
            if meta.get("issuer") != provider.issuer:
                raise ProviderUnavailable(
                    f"The provider's discovery document names the issuer {meta.get('issuer')!r},"
                    f" not the configured {provider.issuer!r}."
                )
            for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(meta.get(field), str):
                    raise ProviderUnavailable(f"The provider's discovery document lacks {field}.")
            return meta

        meta: dict[str, Any] | None = await self._metadata.get_or_load(name, discover)
        assert meta is not None
        return meta

    async def key_set(self, name: str, *, refresh: bool = False) -> KeySet:
        if refresh:
            self._jwks.drop_local(name)
        jwks_uri = (await self.metadata(name))["jwks_uri"]

        async def fetch() -> KeySet:
            try:
                return KeySet.import_key_set(await self._get_json(jwks_uri))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise ProviderUnavailable(f"The provider's key set is unusable: {exc}") from exc

        keys: KeySet | None = await self._jwks.get_or_load(name, fetch)
        assert keys is not None
        return keys

    def authorization_url(
        self,
        name: str,
        meta: dict[str, Any],
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        verifier: str,
    ) -> str:
        provider = self.provider(name)
        params = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(provider.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        }
        endpoint: str = meta["authorization_endpoint"]
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)

    async def exchange(
        self, name: str, *, code: str, verifier: str, redirect_uri: str
    ) -> dict[str, Any]:
        """Trade the authorization code (and the PKCE verifier) for the provider's tokens."""
        provider = self.provider(name)
        meta = await self.metadata(name)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        basic = None
        if "client_secret_basic" in methods:
            # RFC 6749 section 2.3.1: form-encode both parts before Basic encodes them.
            basic = httpx.BasicAuth(
                quote(provider.client_id, safe=""), quote(provider.client_secret, safe="")
            )
        else:
            form |= {"client_id": provider.client_id, "client_secret": provider.client_secret}
        try:
            response = await self.http.post(
                meta["token_endpoint"], data=form, auth=basic or httpx.USE_CLIENT_DEFAULT
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"The provider's token endpoint failed: {exc}") from exc
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error", "unknown") if isinstance(body, dict) else "unknown"
            raise OidcRefused(f"The provider refused the authorization code ({error}).")
        if not isinstance(body.get("id_token"), str):
            raise OidcRefused("The provider's token response has no ID token.")
        return body

    async def verify_id_token(self, name: str, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, expiry and nonce hold."""
        provider = self.provider(name)
        try:
            try:
                token = jwt.decode(id_token, await self.key_set(name), algorithms=ALGORITHMS)
            except InvalidKeyIdError:  # the provider may have rotated its keys
                token = jwt.decode(
                    id_token, await self.key_set(name, refresh=True), algorithms=ALGORITHMS
                )
            claims: dict[str, Any] = token.claims
            jwt.JWTClaimsRegistry(
                now=int(self.clock()),
                leeway=CLOCK_SKEW_S,
                iss={"essential": True, "value": provider.issuer},
                aud={"essential": True, "value": provider.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (JoseError, ValueError) as exc:
            raise OidcRefused(f"The provider's ID token failed verification: {exc}") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != provider.client_id:
            raise OidcRefused("The ID token names several audiences but is not issued to us.")
        return claims
