"""Password hashing (argon2, off the event loop) and access tokens (JWT, HS256).

The decode-once contract
------------------------
A request's bearer token is verified once, by the edge middleware (`kit.middleware`), before the
route runs (the rate limiter keys by principal, the logs name the user): it verifies it with
`app.state.tokens` (`verify_bearer`) and leaves the outcome in `scope["state"]["token_claims"]`:

- a `TokenClaims` when the `Authorization: Bearer` token verifies;
- `None` when there is no bearer token or it does not verify (bad signature, expired, ...);
- the key is absent only when the middleware did not run (an app built without it).

Whoever needs the claims later (`authz.dependencies.get_principal`, a cache keyed by user) reads
them from there with `stashed_claims` and decodes only when the key is absent. Nothing else is
stored: the principal itself is loaded (or cached) by the auth dependency.

A verified token's claims are kept in a bounded in-process cache keyed by the token itself,
so a warm request does not check the signature again; a cached token past its `exp` is
refused like any expired one.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import Scope

from tenantry.config import Settings
from tenantry.kit.cache import CacheSpec, NamedCache, declare

# argon2id at OWASP's recommended minimum (m=19 MiB, t=2, p=1): about 25 ms of one core here.
# RFC 9106's heavier profile (64 MiB, t=3, p=4) costs ~250 ms of CPU per login on a server
# pinned to one core, which turns login into an easy denial of service. Settings can raise it;
# hashes made with other parameters are upgraded at the next successful login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# A real hash of a random password: verifying an unknown email against it costs the same as a
# wrong password, so response time does not tell whether an account exists.
_DUMMY_HASH = _hasher.hash(uuid.uuid4().hex)


def configure_password_hashing(settings: Settings) -> None:
    """Use the parameters from settings (the app, the CLI and the seeders call this)."""
    global _hasher, _DUMMY_HASH
    wanted = (settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    if (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism) == wanted:
        return
    _hasher = PasswordHasher(time_cost=wanted[0], memory_cost=wanted[1], parallelism=wanted[2])
    _DUMMY_HASH = _hasher.hash(uuid.uuid4().hex)


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


def _verify(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; `stored_hash=None` (no such user) costs a full verify too."""
    return await anyio.to_thread.run_sync(_verify, stored_hash, password)


def password_needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired, or not meant for us."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    sub: uuid.UUID
    tid: uuid.UUID
    role: str
    ver: int
    iat: int
    exp: int


# Verified access tokens by the token itself; a hit is still checked against its `exp`.
TOKEN_CLAIMS_CACHE: CacheSpec[TokenClaims] = declare("token_claims", ttl_s=300, max_size=10_000)


class TokenCodec:
    algorithm = "HS256"

    def __init__(
        self,
        secret: str,
        issuer: str,
        audience: str,
        ttl_s: int,
        *,
        verified: NamedCache[TokenClaims] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s
        self.clock = clock
        # The app hands in its declared cache (`Caches.build`); alone, the codec keeps its own.
        self.verified: NamedCache[TokenClaims] = verified or NamedCache(TOKEN_CLAIMS_CACHE)

    def issue(
        self, *, user_id: uuid.UUID, tenant_id: uuid.UUID, role: str, version: int
    ) -> tuple[str, int]:
        now = int(self.clock())
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "tid": str(tenant_id),
            "role": role,
            "ver": version,
            "iat": now,
            "exp": now + self.ttl_s,
            "iss": self.issuer,
            "aud": self.audience,
        }
        return jwt.encode(payload, self._secret, algorithm=self.algorithm), self.ttl_s

    def decode(self, token: str) -> TokenClaims:
        """The token's claims, verified now or found verified in the cache; InvalidToken else."""
        claims = self.verified.peek(token)
        if claims is not None:
            if claims.exp > self.clock():
                return claims
            self.verified.drop_local(token)
            raise InvalidToken("Signature has expired")
        claims = self._verify(token)
        self.verified.put_local(token, claims)
        return claims

    def _verify(self, token: str) -> TokenClaims:
        try:
            raw = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["sub", "tid", "role", "ver", "iat", "exp", "iss", "aud"]},
            )
            return TokenClaims(
                sub=uuid.UUID(raw["sub"]),
                tid=uuid.UUID(raw["tid"]),
                role=str(raw["role"]),
                ver=int(raw["ver"]),
                iat=int(raw["iat"]),
                exp=int(raw["exp"]),
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(str(exc)) from exc


# --- the decode-once contract (see the module docstring) -------------------------------------

TOKEN_CLAIMS: Final = "token_claims"


class Absent(enum.Enum):
    """The middleware did not look at this request's token (a sentinel mypy can narrow)."""

    ABSENT = "absent"


ABSENT: Final = Absent.ABSENT


def bearer_token(authorization: bytes | None) -> str | None:
    """The bearer token of an `Authorization` header value, parsed exactly as FastAPI's
    `HTTPBearer` parses it (so both always see the same token)."""
    if authorization is None:
        return None
    scheme, token = get_authorization_scheme_param(authorization.decode("latin-1"))
    return token if token and scheme.lower() == "bearer" else None


# API keys travel as bearer tokens too (`api_keys.service`); they are never JWTs.
API_KEY_PREFIX: Final = "tnt_"


def is_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


def verify_bearer(codec: TokenCodec, authorization: bytes) -> TokenClaims | None:
    """The claims of the bearer token in an `Authorization` header value, or None when it holds
    none, holds an API key (not decoded as a JWT: the auth dependency checks those), or does
    not verify. The edge middleware stashes the outcome in the request's state
    (`TOKEN_CLAIMS`)."""
    token = bearer_token(authorization)
    if token is None or is_api_key(token):
        return None
    try:
        return codec.decode(token)
    except InvalidToken:
        return None


def stashed_claims(scope: Scope) -> TokenClaims | Absent | None:
    """What the middleware stashed: claims, None (no valid token), or `ABSENT` (not looked)."""
    state = scope.get("state")
    if state is None or TOKEN_CLAIMS not in state:
        return ABSENT
    claims: TokenClaims | None = state[TOKEN_CLAIMS]
    return claims


def request_claims(scope: Scope, codec: TokenCodec, token: str) -> TokenClaims:
    """The claims of the request's bearer token, verified once per request: taken from the
    middleware's stash when it looked, verified here (and stashed) when it did not."""
    stashed = stashed_claims(scope)
    if isinstance(stashed, TokenClaims):
        return stashed
    if stashed is None:
        raise InvalidToken("the bearer token did not verify")
    claims = codec.decode(token)
    scope.setdefault("state", {})[TOKEN_CLAIMS] = claims
    return claims
