"""Vendor credentials at rest: Fernet with MultiFernet so keys can rotate.

APPROVALS_SECRET_KEY is a comma-separated list: the first key encrypts, every key decrypts, so an
admin rotates by putting a new key first and later dropping the old one (`rotate` re-encrypts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretKeyError(ValueError):
    pass


class CredentialBox:
    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise SecretKeyError("APPROVALS_SECRET_KEY is empty")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                "APPROVALS_SECRET_KEY must be Fernet keys (32 url-safe base64 bytes), comma-separated"
            ) from exc

    def seal(self, credentials: Mapping[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(dict(credentials), sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict[str, str]:
        """Decrypt; raises SecretKeyError when no configured key fits (e.g. the key was replaced)."""
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise SecretKeyError("stored credentials cannot be decrypted with APPROVALS_SECRET_KEY") from exc
        return {str(k): str(v) for k, v in data.items()}

    def rotate(self, token: str) -> str:
        """The same credentials encrypted under the first key; SecretKeyError when no key opens them."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError("stored credentials cannot be decrypted with APPROVALS_SECRET_KEY") from exc

    def __repr__(self) -> str:  # the keys stay out of reprs
        return "CredentialBox(keys=<hidden>)"

    @staticmethod
    def generate() -> str:
        return Fernet.generate_key().decode()
