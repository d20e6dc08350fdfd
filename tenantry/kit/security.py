"""Password hashing (argon2, off the event loop) and access tokens (JWT, HS256).

A verified token's claims are kept in a bounded in-process cache keyed by the token itself,
so a warm request does not check the signature again; a cached token past its `exp` is
refused like any expired one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tenantry.config import Settings
from tenantry.kit.cache import CacheSpec, NamedCache

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


TOKEN_CLAIMS_CACHE = "token_claims"


class TokenCodec:
    algorithm = "HS256"

    def __init__(
        self,
        secret: str,
        issuer: str,
        audience: str,
        ttl_s: int,
        *,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s
        self.clock = clock
        self.verified: NamedCache[TokenClaims] = NamedCache(
            CacheSpec(TOKEN_CLAIMS_CACHE, ttl_s=min(300, ttl_s), max_size=cache_size)
        )

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


def request_claims(scope: MutableMapping[str, Any], codec: TokenCodec, token: str) -> TokenClaims:
    """The decode-once contract: the bearer token of a request is verified once, by whoever
    asks first (a middleware or `get_principal`), and its claims are kept in
    `scope["state"]["token_claims"]` for the rest of the request."""
    state = scope.setdefault("state", {})
    stashed = state.get("token_claims")
    if isinstance(stashed, TokenClaims):
        return stashed
    claims = codec.decode(token)
    state["token_claims"] = claims
    return claims
