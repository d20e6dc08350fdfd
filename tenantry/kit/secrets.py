"""Secrets that tenants give us (a sync source's credential, a webhook's signing secret),
encrypted at rest and readable only by the code that must use them.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`): authenticated, so a tampered or
foreign value is refused rather than decrypted into garbage. Each passphrase in SECRETS_KEYS
becomes a Fernet key through SHA-256 (they are long random strings, not passwords people
choose, so no slow key derivation is needed); `MultiFernet` encrypts with the first and
decrypts with any, which is how a key is rotated. A sealed value never appears in a response,
a log line or a metric label: schemas expose `has_secret`, never the value.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretUnreadable(ValueError):
    """Sealed under a key no longer in SECRETS_KEYS, or altered."""


def _fernet(passphrase: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(passphrase.encode()).digest()))


class SecretBox:
    def __init__(self, passphrases: Sequence[str]) -> None:
        if not passphrases:
            raise ValueError("SECRETS_KEYS is empty")
        self._box = MultiFernet([_fernet(p) for p in passphrases])

    def seal(self, plain: str) -> str:
        return self._box.encrypt(plain.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._box.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise SecretUnreadable("the secret cannot be decrypted with SECRETS_KEYS") from exc

    def reseal(self, sealed: str) -> str:
        """The value under the current first key (for a rotation)."""
        return self._box.rotate(sealed.encode("ascii")).decode("ascii")
