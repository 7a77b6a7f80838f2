"""Credential encryption at rest (AES-256-GCM with key ids for rotation) and masking for display.
Used by the API (provider configs, check credentials), the alert function, the checks and the synthetic store.

Every ciphertext is bound to where it belongs: its key id, its project and its field are the cipher's
associated data, so a ciphertext copied into another project or another field does not decrypt there."""

from __future__ import annotations

import base64
import binascii
import os
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from shared.settings import get_settings

CIPHERTEXT_PREFIX = "enc:v2"
# Bound only to its key id; still read, so rows written before v2 keep working until `python -m shared.rekey`.
LEGACY_PREFIX = "enc:v1"
_NONCE_BYTES = 12
_MASK = "****"


class CredentialKeyError(RuntimeError):
    pass


@dataclass(frozen=True)
class Binding:
    """Where a ciphertext belongs: the project that owns it and the field that holds it (e.g. 'config.auth.password').

    Decrypting under any other binding fails, as AES-GCM checks the associated data with the tag.
    """

    project_id: uuid.UUID | str
    field: str

    def associated_data(self, key_id: str) -> bytes:
        return f"{CIPHERTEXT_PREFIX}|{key_id}|{self.project_id}|{self.field}".encode()


def provider_binding(project_id: uuid.UUID | str) -> Binding:
    """A notification provider's config is encrypted whole, as one field."""
    return Binding(project_id, "notification_providers.config")


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

    def encrypt(self, plaintext: str, binding: Binding) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # loaded by the first seal or reveal

        key_id = self.primary_id
        sealed = AESGCM(self.keys[key_id]).encrypt(nonce, plaintext.encode(), binding.associated_data(key_id))
        return f"{CIPHERTEXT_PREFIX}:{key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, binding: Binding) -> str:
        """The plaintext; raises InvalidTag when the token was made for another project or field (or forged)."""
        version, key_id, encoded = _split(token)
        key = self.keys.get(key_id)
        if key is None:
            raise CredentialKeyError(f"credential encrypted with unknown key id '{key_id}'")
        raw = base64.b64decode(encoded)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        associated = binding.associated_data(key_id) if version == CIPHERTEXT_PREFIX else key_id.encode()
        return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], associated).decode()

    def needs_reencryption(self, token: str) -> bool:
        """Under an older key, or from before ciphertexts were bound to their project and field."""
        return not token.startswith(f"{CIPHERTEXT_PREFIX}:{self.primary_id}:")


def _split(token: str) -> tuple[str, str, str]:
    for version in (CIPHERTEXT_PREFIX, LEGACY_PREFIX):
        if token.startswith(version + ":"):
            key_id, _, encoded = token[len(version) + 1 :].partition(":")
            if key_id and encoded:
                return version, key_id, encoded
    raise ValueError("not an encrypted credential")


@lru_cache(maxsize=1)
def key_ring() -> KeyRing:
    return KeyRing.parse(get_settings().credential_keys)


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith((CIPHERTEXT_PREFIX + ":", LEGACY_PREFIX + ":"))


def mask(value: str | None) -> str:
    """Keep the first 2 and last 2 characters; values too short to hide anything are masked entirely."""
    if not value:
        return ""
    if len(value) < 8:
        return _MASK
    return f"{value[:2]}{_MASK}{value[-2:]}"


def masked_url(url: str) -> str:
    """An http(s) URL keeps its scheme, host and port (never its userinfo), with the path and query masked; any
    other scheme's rest is masked whole (an Apprise URL such as tgram://<token>/... carries its token there)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        rest = url[len(parts.scheme) + 3 :] if "://" in url else url
        return f"{parts.scheme}://{mask(rest)}"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    shown = f"{parts.scheme}://{parts.hostname or ''}{port}"
    hidden = parts.path + (f"?{parts.query}" if parts.query else "")
    return shown + (mask(hidden) if hidden.strip("/") else hidden)


_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_SECRET_ASSIGNMENT = re.compile(
    r"\b(password|passwd|pass|token|secret|api[_-]?key|apikey|authorization|auth|key)(\s*[=:]\s*)((?:bearer\s+|basic\s+)?[^\s&,;'\"]+)",
    re.IGNORECASE,
)
_USERINFO = re.compile(r"(?<![\w.+-])([\w.+-]+):([^\s@/:]+)@(?=[A-Za-z0-9\[])")  # user:password@host
_BEARER = re.compile(r"\b(bearer|basic)\s+([A-Za-z0-9._~+/=-]{6,})", re.IGNORECASE)
_OPAQUE_RUN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{24,}(?![A-Za-z0-9_-])")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def masked_text(text: str | None) -> str | None:
    """A stored free text (a delivery's error) as it may be shown: every URL masked (masked_url), the password
    of a user:password@host, values given to secret-sounding names (token=..., password: ...) and bearer
    credentials masked, and long opaque runs (24+ characters of a token's alphabet, but not a UUID) masked. Writers already cut the secrets they knew
    of; this catches what they could not know (a receiver echoing its URL, a row written before redaction)."""
    if not text:
        return text
    text = _URL_IN_TEXT.sub(lambda match: masked_url(match.group(0)), text)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}:{_MASK}@", text)
    text = _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{_MASK}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {_MASK}", text)
    return _OPAQUE_RUN.sub(lambda m: m.group(0) if _UUID.fullmatch(m.group(0)) else mask(m.group(0)), text)


def generate_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


SECRET_FIELD_NAMES = frozenset(
    {"password", "token", "secret", "apikey", "api_key", "authorization", "bearer"}
)


# A target may carry credentials: userinfo (https://user:pass@host/, refused on save but possible in older rows) or a
# secret-named query parameter (?token=..., ?api_key=...: any name containing one of SECRET_FIELD_NAMES' words).
# Written in the regular-expression dialect Python's re and PostgreSQL share, so the API masks targets for display
# and strips the same parts before searching them (monitors.search_target, migration 0010) by one rule.
TARGET_USERINFO_PATTERN = r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@"
TARGET_SECRET_PARAMETER_PATTERN = (
    r"([?&][^=&#]*(?:password|token|secret|api[-_]?key|authorization|bearer)[^=&#]*=)[^&#]*"
)
_TARGET_USERINFO = re.compile(TARGET_USERINFO_PATTERN)
_TARGET_SECRET_PARAMETER = re.compile(TARGET_SECRET_PARAMETER_PATTERN, re.IGNORECASE)


def mask_target(target: str) -> str:
    """A target as shown: userinfo replaced by the mask, secret-named query values masked as config values are."""
    shown = _TARGET_USERINFO.sub(lambda found: f"{found.group(1)}{_MASK}@", target)
    return _TARGET_SECRET_PARAMETER.sub(
        lambda found: found.group(1) + mask(found.group(0)[len(found.group(1)) :]), shown
    )


def mask_secrets(value: object, project_id: uuid.UUID | str, path: tuple[str, ...] = ()) -> object:
    """Walks JSON-like data: encrypted values become the mask of their plaintext, secret-named fields are masked.

    path: where value sits (e.g. ('config',) for a monitor's config), which names each ciphertext's field.
    """
    if isinstance(value, dict):
        return {
            key: mask(str(item))
            if key.lower().replace("-", "_") in SECRET_FIELD_NAMES
            and isinstance(item, str)
            and not is_encrypted(item)
            else mask_secrets(item, project_id, (*path, str(key)))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(item, project_id, path) for item in value]
    if is_encrypted(value):
        try:
            return mask(key_ring().decrypt(value, Binding(project_id, ".".join(path))))
        except (
            Exception
        ):  # a key that no longer decrypts, or a ciphertext of elsewhere, must not leak anything
            return _MASK
    return value
