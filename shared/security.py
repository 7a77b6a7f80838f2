"""Credential encryption at rest (AES-256-GCM with key ids for rotation) and masking for display.
Used by the API (provider configs, check credentials), the alert function and the synthetic store."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from functools import lru_cache

from shared.settings import get_settings

CIPHERTEXT_PREFIX = "enc:v1"
_NONCE_BYTES = 12
_MASK = "****"


class CredentialKeyError(RuntimeError):
    pass


@dataclass(frozen=True)
class KeyRing:
    """Keys by id. The first key encrypts new data; every key can still decrypt, so keys rotate without downtime."""

    keys: dict[str, bytes]
    primary_id: str

    @classmethod
    def parse(cls, setting: str | None) -> KeyRing:
        """'kid:base64key[,kid:base64key...]' or a bare base64 key (id 'k1'). The first entry is the newest."""
        if not setting or not setting.strip():
            raise CredentialKeyError(
                "no credential key: set SC_CREDENTIAL_KEY (or the OpenFaaS secret 'credential-key') "
                "to a base64-encoded 32-byte key, e.g. from `python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'`"
            )
        keys: dict[str, bytes] = {}
        primary_id = None
        for entry in (part.strip() for part in setting.split(",") if part.strip()):
            key_id, _, encoded = entry.rpartition(":")
            key_id = key_id or "k1"
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise CredentialKeyError(f"credential key '{key_id}' is not valid base64") from None
            if len(key) != 32:
                raise CredentialKeyError(
                    f"credential key '{key_id}' is {len(key)} bytes; AES-256 needs exactly 32"
                )
            keys[key_id] = key
            primary_id = primary_id or key_id
        return cls(keys=keys, primary_id=primary_id)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # loaded by the first seal or reveal

        sealed = AESGCM(self.keys[self.primary_id]).encrypt(
            nonce, plaintext.encode(), self.primary_id.encode()
        )
        return f"{CIPHERTEXT_PREFIX}:{self.primary_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str) -> str:
        prefix, _, rest = token.partition(f"{CIPHERTEXT_PREFIX}:")
        key_id, _, encoded = rest.partition(":")
        if prefix or not encoded:
            raise ValueError("not an encrypted credential")
        key = self.keys.get(key_id)
        if key is None:
            raise CredentialKeyError(f"credential encrypted with unknown key id '{key_id}'")
        raw = base64.b64decode(encoded)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], key_id.encode()).decode()

    def needs_reencryption(self, token: str) -> bool:
        return not token.startswith(f"{CIPHERTEXT_PREFIX}:{self.primary_id}:")


@lru_cache(maxsize=1)
def key_ring() -> KeyRing:
    return KeyRing.parse(get_settings().credential_keys)


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(CIPHERTEXT_PREFIX + ":")


def mask(value: str | None) -> str:
    """Keep the first 2 and last 2 characters; values too short to hide anything are masked entirely."""
    if not value:
        return ""
    if len(value) < 8:
        return _MASK
    return f"{value[:2]}{_MASK}{value[-2:]}"


def generate_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


SECRET_FIELD_NAMES = frozenset(
    {"password", "token", "secret", "apikey", "api_key", "authorization", "bearer"}
)


def mask_secrets(value: object) -> object:
    """Walks JSON-like data: encrypted values become the mask of their plaintext, secret-named fields are masked."""
    if isinstance(value, dict):
        return {
            key: mask(str(item))
            if key.lower().replace("-", "_") in SECRET_FIELD_NAMES
            and isinstance(item, str)
            and not is_encrypted(item)
            else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    if is_encrypted(value):
        try:
            return mask(key_ring().decrypt(value))
        except Exception:  # a key that no longer decrypts still must not leak anything
            return _MASK
    return value
